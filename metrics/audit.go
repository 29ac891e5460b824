package metrics

// AuditDropped counts query-audit lines dropped because the audit sink
// could not keep up (the relay never waits for it).
var AuditDropped = counter("portcullis_audit_dropped_total", "Query-audit lines dropped because the audit sink could not keep up; the drop is itself audited (event audit_dropped).")
