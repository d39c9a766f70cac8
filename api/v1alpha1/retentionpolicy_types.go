package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SQLIdentifier is a column name: lower-case letters, digits and
// underscores, starting with a letter or underscore, at most 63 characters.
// The sweeper quotes it as well; the pattern keeps surprises out.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z_][a-z0-9_]*$')",message="must be a plain SQL identifier: lower-case letters, digits and underscores, starting with a letter or underscore, at most 63 characters"
type SQLIdentifier string

// SQLTableName is a table name, optionally qualified by its schema
// (schema.table), each part a plain SQL identifier.
// +kubebuilder:validation:MaxLength=127
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z_][a-z0-9_]{0,62}([.][a-z_][a-z0-9_]{0,62})?$')",message="must be a plain SQL table name, optionally schema-qualified (schema.table): lower-case letters, digits and underscores, each part at most 63 characters"
type SQLTableName string

// ClockEvent is the event from which a retention period runs.
// +kubebuilder:validation:Enum=LastContact;EndOfHelp;Closure;Creation
type ClockEvent string

// The clock events.
const (
	ClockLastContact ClockEvent = "LastContact"
	ClockEndOfHelp   ClockEvent = "EndOfHelp"
	ClockClosure     ClockEvent = "Closure"
	ClockCreation    ClockEvent = "Creation"
)

// RetentionAction is what happens to a record whose retention has passed.
// +kubebuilder:validation:Enum=Delete;Anonymise
type RetentionAction string

// The retention actions.
const (
	ActionDelete    RetentionAction = "Delete"
	ActionAnonymise RetentionAction = "Anonymise"
)

// DatabaseSpec says how the sweeper reaches the store's database.
type DatabaseSpec struct {
	// CredentialsSecretName is a Secret in the policy's namespace with the
	// keys host, port, dbname, user, password and optionally sslmode. They
	// reach the sweeper as environment variables, never as arguments, and
	// never appear in status.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	CredentialsSecretName string `json:"credentialsSecretName"`
}

// RetentionClock is the column that holds the moment the period runs from.
type RetentionClock struct {
	// Event the column records.
	Event ClockEvent `json:"event"`
	// Column with that moment (a date or timestamp).
	Column SQLIdentifier `json:"column"`
}

// RetentionRule destroys or anonymises the records of one table once their
// retention period has passed.
// +kubebuilder:validation:XValidation:rule="self.action != 'Anonymise' || (has(self.anonymiseColumns) && size(self.anonymiseColumns) > 0)",message="anonymiseColumns must list at least one column when action is Anonymise"
// +kubebuilder:validation:XValidation:rule="self.action == 'Anonymise' || !has(self.anonymiseColumns)",message="anonymiseColumns is only allowed when action is Anonymise"
// +kubebuilder:validation:XValidation:rule="!has(self.anonymiseColumns) || !(self.idColumn in self.anonymiseColumns) && !(self.clock.column in self.anonymiseColumns)",message="anonymiseColumns must not include idColumn or the clock column"
// +kubebuilder:validation:XValidation:rule="self.period != 'P0D' || self.clock.event in ['EndOfHelp', 'Closure']",message="period P0D (destroy at the end of the involvement) needs clock.event EndOfHelp or Closure: with LastContact or Creation it would destroy records still in use"
type RetentionRule struct {
	// Name of the rule, unique within the policy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Description of the kind of dossier, such as "youth care dossiers".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Description string `json:"description,omitempty"`
	// Table that holds the records.
	Table SQLTableName `json:"table"`
	// IDColumn is the primary key; destroyed ids are recorded only as hashes.
	// +optional
	// +kubebuilder:default=id
	IDColumn SQLIdentifier `json:"idColumn,omitempty"`
	// DossierColumn holds the dossier id each record belongs to, as the
	// application stores it (raw). An Erasure DataSubjectRequest, which
	// names its dossier by pseudonym only, destroys the records whose
	// pseudonym of this column (lower-cased, keyed with the store's
	// pseudonym key, as the audit proxy makes it) matches. A rule without
	// it takes no part in erasure; the request's status says so.
	// +optional
	DossierColumn SQLIdentifier `json:"dossierColumn,omitempty"`
	// Clock is where the period runs from.
	Clock RetentionClock `json:"clock"`
	// Period after the clock event, such as P20Y; P0D destroys as soon as
	// the involvement has ended (clock events EndOfHelp and Closure only).
	Period RetentionPeriod `json:"period"`
	// LegalHoldColumn is a boolean column; records where it is true are
	// never destroyed.
	// +optional
	LegalHoldColumn SQLIdentifier `json:"legalHoldColumn,omitempty"`
	// ExtensionColumn is a date column holding a client-requested extension;
	// a record is kept at least until that date.
	// +optional
	ExtensionColumn SQLIdentifier `json:"extensionColumn,omitempty"`
	// Action on records that are due: Delete (the default) or Anonymise.
	// +optional
	// +kubebuilder:default=Delete
	Action RetentionAction `json:"action,omitempty"`
	// AnonymiseColumns are cleared when Action is Anonymise.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=set
	AnonymiseColumns []SQLIdentifier `json:"anonymiseColumns,omitempty"`
	// Justification for a period outside the statutory range.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Justification string `json:"justification,omitempty"`
}

// RetentionPolicySpec declares how long the dossiers of one store are kept
// and when the sweeper runs.
type RetentionPolicySpec struct {
	// StoreRef names the DossierStore whose database is swept.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.storeRef is immutable: create a new policy for another store"
	StoreRef StoreReference `json:"storeRef"`

	// Database the sweeper connects to.
	Database DatabaseSpec `json:"database"`

	// Schedule of the sweep in cron format (minute hour day-of-month month
	// day-of-week) or a macro such as @daily.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]{0,2})?(,([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]{0,2})?)* +([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[1-9][0-9]{0,2})?(,([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[1-9][0-9]{0,2})?)* +([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]{0,2})?(,([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]{0,2})?)* +([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]{0,2})?(,([*]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]{0,2})?)* +([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]{0,2})?(,([*]|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]{0,2})?)*)$')",message="spec.schedule must be a cron schedule with five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT) or a macro such as @daily"
	Schedule string `json:"schedule"`

	// TimeZone of the schedule, an IANA name; Europe/Amsterdam by default.
	// +optional
	// +kubebuilder:default="Europe/Amsterdam"
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z]+(/[A-Za-z0-9_+-]+)*$`
	TimeZone string `json:"timeZone,omitempty"`

	// Rules, one per kind of dossier or table.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +listType=map
	// +listMapKey=name
	Rules []RetentionRule `json:"rules"`

	// BatchSize is the most records one sweep transaction destroys or
	// anonymises. A transaction examines a range of at least this many
	// keys (at most 8 times as many where few records are due).
	// +optional
	// +kubebuilder:default=500
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	BatchSize int32 `json:"batchSize,omitempty"`

	// MaxRunTime bounds one sweep, as a Go duration such as 1h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(h|m|s)([0-9]+(m|s))?([0-9]+s)?$') && duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="spec.maxRunTime must be a duration such as 1h, between 1m and 24h"
	MaxRunTime string `json:"maxRunTime,omitempty"`

	// DryRun counts what is due without destroying anything.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// Suspend pauses the schedule.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// RunResult is the outcome of one sweep.
// +kubebuilder:validation:Enum=Succeeded;Failed;Interrupted;DryRun
type RunResult string

// The run results.
const (
	RunSucceeded   RunResult = "Succeeded"
	RunFailed      RunResult = "Failed"
	RunInterrupted RunResult = "Interrupted"
	RunDryRun      RunResult = "DryRun"
)

// RuleRun counts what one rule did in one sweep.
type RuleRun struct {
	// Rule name.
	Rule string `json:"rule"`
	// Destroyed records.
	Destroyed int64 `json:"destroyed"`
	// Anonymised records.
	Anonymised int64 `json:"anonymised"`
	// Held records that were due but under legal hold or extension.
	Held int64 `json:"held"`
	// Overdue records still due after the run.
	Overdue int64 `json:"overdue"`
	// NoClock records have an empty clock column: no period makes them
	// due. -1 when not counted.
	// +optional
	NoClock int64 `json:"noClock,omitempty"`
	// KeptByExtension records were due by their clock but kept because
	// their dossier has a granted RetentionExtension request in effect
	// (they are in Held too). -1 when not counted.
	// +optional
	KeptByExtension int64 `json:"keptByExtension,omitempty"`
}

// RetentionRun summarises one sweep: the proof of destruction (verklaring
// van vernietiging) in counts; the hashed record ids are in the run's log.
type RetentionRun struct {
	// StartTime of the sweep.
	StartTime metav1.Time `json:"startTime"`
	// EndTime of the sweep.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// Result of the sweep.
	Result RunResult `json:"result"`
	// Destroyed records in all rules.
	Destroyed int64 `json:"destroyed"`
	// Anonymised records in all rules.
	Anonymised int64 `json:"anonymised"`
	// Held records in all rules.
	Held int64 `json:"held"`
	// Overdue records in all rules after the run.
	Overdue int64 `json:"overdue"`
	// NoClock records in all rules: their clock column is empty, so no
	// period makes them due; -1 when a rule was not counted.
	// +optional
	NoClock int64 `json:"noClock,omitempty"`
	// KeptByExtension records in all rules: due by their clock, kept by a
	// granted RetentionExtension request in effect (they are in Held
	// too); -1 when a rule was not counted.
	// +optional
	KeptByExtension int64 `json:"keptByExtension,omitempty"`
	// ExtensionsInEffect is the number of granted RetentionExtension
	// requests of the store the run honoured.
	// +optional
	ExtensionsInEffect int32 `json:"extensionsInEffect,omitempty"`
	// Rules, per rule.
	// +optional
	// +listType=map
	// +listMapKey=rule
	Rules []RuleRun `json:"rules,omitempty"`
	// ProofDigest is the SHA-256 of the run's proof-of-destruction record.
	// +optional
	ProofDigest string `json:"proofDigest,omitempty"`
}

// RetentionPolicyStatus is the observed state of a RetentionPolicy.
type RetentionPolicyStatus struct {
	CommonStatus `json:",inline"`

	// CronJobName runs the sweeper.
	// +optional
	CronJobName string `json:"cronJobName,omitempty"`
	// LastRun is the most recent sweep reported.
	// +optional
	LastRun *RetentionRun `json:"lastRun,omitempty"`
	// NextRun is when the next sweep is scheduled.
	// +optional
	NextRun *metav1.Time `json:"nextRun,omitempty"`
	// Periods lists the rules' periods, for the printer column.
	// +optional
	Periods string `json:"periods,omitempty"`
}

// RetentionPolicy says how long a store's dossiers are kept and runs a
// scheduled sweep that destroys or anonymises what is due, never what is
// under legal hold, and reports what it did.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rpol,categories=privacy
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.storeRef.name`
// +kubebuilder:printcolumn:name="Period",type=string,JSONPath=`.status.periods`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`,priority=1
// +kubebuilder:printcolumn:name="Last Run",type=date,JSONPath=`.status.lastRun.startTime`
// +kubebuilder:printcolumn:name="Destroyed",type=integer,JSONPath=`.status.lastRun.destroyed`
// +kubebuilder:printcolumn:name="Overdue",type=integer,JSONPath=`.status.lastRun.overdue`
// +kubebuilder:printcolumn:name="No Clock",type=integer,JSONPath=`.status.lastRun.noClock`,priority=1
// +kubebuilder:printcolumn:name="Compliant",type=string,JSONPath=`.status.conditions[?(@.type=="Compliant")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RetentionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RetentionPolicySpec   `json:"spec"`
	Status RetentionPolicyStatus `json:"status,omitempty"`
}

// RetentionPolicyList is a list of RetentionPolicies.
// +kubebuilder:object:root=true
type RetentionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RetentionPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RetentionPolicy{}, &RetentionPolicyList{})
}
