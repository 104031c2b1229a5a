package attack

import (
	"encoding/json"
	"time"
)

// ResetOpaqueHopWarning lets a test see the next warning.
func ResetOpaqueHopWarning() { lastOpaqueHopWarning.Store(0) }

// Policy is Check's upstream policy of options, through the guard's memo.
func (g *Guard) Policy(options json.RawMessage) (int, time.Duration) { return g.policies.get(options) }

const MaxPolicies = maxPolicies
