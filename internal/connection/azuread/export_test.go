package azuread

import (
	"testing"
	"time"
)

// SetGraphBudget shortens the Graph budget of every login for one test.
func SetGraphBudget(t testing.TB, d time.Duration) {
	old := graphBudget
	graphBudget = d
	t.Cleanup(func() { graphBudget = old })
}
