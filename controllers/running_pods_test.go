package controllers

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRunningPods(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase, terminating bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
		if terminating {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		lists [][]corev1.Pod
		want  []string
	}{
		{name: "no pods", lists: [][]corev1.Pod{nil, nil}, want: nil},
		{
			name:  "a pod selected and labelled counts once",
			lists: [][]corev1.Pod{{pod("app-1", corev1.PodRunning, false)}, {pod("app-1", corev1.PodRunning, false), pod("app-2", corev1.PodPending, false)}},
			want:  []string{"app-1", "app-2"},
		},
		{
			name: "finished and terminating pods do not count",
			lists: [][]corev1.Pod{{
				pod("done", corev1.PodSucceeded, false), pod("failed", corev1.PodFailed, false),
				pod("going", corev1.PodRunning, true), pod("up", corev1.PodRunning, false),
			}},
			want: []string{"up"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range runningPods(tc.lists...) {
				got = append(got, p.Name)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("runningPods = %v, want %v", got, tc.want)
			}
		})
	}
}
