package attack

// ResetOpaqueHopWarning lets a test see the next warning.
func ResetOpaqueHopWarning() { lastOpaqueHopWarning.Store(0) }
