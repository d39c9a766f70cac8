package v1alpha1

// LogbookTokenAudience is the audience of the projected ServiceAccount
// token the webhook mounts into every audit proxy that ships to the
// logbook, and that the logbook requires of every sender: a token of this
// audience is good for nothing else (not for the Kubernetes API), and a
// token for anything else is refused by the logbook.
const LogbookTokenAudience = "dossierguard-logbook"
