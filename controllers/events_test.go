package controllers_test

import (
	"k8s.io/apimachinery/pkg/runtime"
)

// noEvents discards events, for reconcilers driven directly by a test.
type noEvents struct{}

func (noEvents) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...interface{}) {
}
func (noEvents) AnnotatedEventf(runtime.Object, runtime.Object, map[string]string, string, string, string, string, ...interface{}) {
}
