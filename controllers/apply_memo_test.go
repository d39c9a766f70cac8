package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestApplyMemo(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "youth", Name: "dossiers-policy", UID: "u-1", ResourceVersion: "41"}
	seen := &corev1.ConfigMap{ObjectMeta: meta}
	desired := []byte(`{"data":{"policy.json":"{}"}}`)
	memo := newApplyMemo(16, time.Hour)
	memo.remember(seen, desired)

	with := func(edit func(*metav1.ObjectMeta)) *corev1.ConfigMap {
		m := *meta.DeepCopy()
		edit(&m)
		return &corev1.ConfigMap{ObjectMeta: m}
	}
	for _, tc := range []struct {
		name    string
		live    client.Object
		desired []byte
		want    bool
	}{
		{"the same object at the same version, the same desired configuration", &corev1.ConfigMap{ObjectMeta: meta}, desired, true},
		{"another version: changed since, by anyone", with(func(m *metav1.ObjectMeta) { m.ResourceVersion = "42" }), desired, false},
		{"another desired configuration", &corev1.ConfigMap{ObjectMeta: meta}, []byte(`{"data":{"policy.json":"{\"roles\":[]}"}}`), false},
		{"an object of that name made anew", with(func(m *metav1.ObjectMeta) { m.UID = "u-2" }), desired, false},
		{"another name", with(func(m *metav1.ObjectMeta) { m.Name = "other-policy" }), desired, false},
		{"another namespace", with(func(m *metav1.ObjectMeta) { m.Namespace = "care" }), desired, false},
		{"another kind of the same name and version", &rbacv1.Role{ObjectMeta: meta}, desired, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := memo.holds(tc.live, tc.desired); got != tc.want {
				t.Errorf("holds = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApplyMemoForgets(t *testing.T) {
	desired := []byte(`{}`)
	obj := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "youth", Name: name, ResourceVersion: "1"}}
	}
	t.Run("the least recently used beyond its size", func(t *testing.T) {
		memo := newApplyMemo(2, time.Hour)
		memo.remember(obj("a"), desired)
		memo.remember(obj("b"), desired)
		memo.remember(obj("c"), desired)
		if memo.holds(obj("a"), desired) {
			t.Error("the first of three is still remembered with room for two")
		}
		if !memo.holds(obj("b"), desired) || !memo.holds(obj("c"), desired) {
			t.Error("the last two are not remembered")
		}
	})
	t.Run("after its time to live", func(t *testing.T) {
		memo := newApplyMemo(2, time.Nanosecond)
		memo.remember(obj("a"), desired)
		time.Sleep(time.Millisecond)
		if memo.holds(obj("a"), desired) {
			t.Error("remembered past its time to live")
		}
	})
}
