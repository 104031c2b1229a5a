package server

import (
	"runtime/debug"
	"strconv"
)

// DefaultGCPercent is the garbage collector's target when the operator has
// not set GOGC. Under load a broker's live heap is small (about 8 MB in the
// login benchmark) and its garbage per request large (about 110 KB per
// login, most of it HTTP and JSON), so Go's default of 100 collects every
// ~13 ms; at 400 the heap peaks near 45 MB and a login costs ~80 µs less
// CPU (docs/performance.md, "Seventh session"). GOMEMLIMIT still bounds
// the heap where memory is tight.
const DefaultGCPercent = 400

// TuneGC sets the garbage collector's target to DefaultGCPercent unless
// GOGC is set, and says what is in force: the percentage and whether it
// came from GOGC. The runtime reads GOGC itself; this only changes Go's
// default.
func TuneGC(getenv func(string) string) (percent string, fromEnv bool) {
	if v := getenv("GOGC"); v != "" {
		return v, true
	}
	debug.SetGCPercent(DefaultGCPercent)
	return strconv.Itoa(DefaultGCPercent), false
}
