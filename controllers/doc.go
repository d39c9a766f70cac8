// Package controllers holds one reconciler per dossierguard kind. Each
// Reconcile reads as a short script of reconcileX steps; desired objects come
// from internal/resources and control checks from internal/compliance.
package controllers
