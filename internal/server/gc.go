package server

import (
	"runtime/debug"
	"strconv"
)

// DefaultGCPercent is the garbage collector's target when the operator has
// not set GOGC. Under load a broker's live heap is small (about 8 MB in the
// login benchmark) and its garbage per request large (about 110 KB per
// login, most of it HTTP and JSON), so Go's default of 100 collects every
// ~13 ms; at 400 the heap peaks near 45 MB and a login costs ~4% less
// CPU (docs/performance.md, "Seventh session"). GOMEMLIMIT still bounds
// the heap where memory is tight.
const DefaultGCPercent = 400

// TuneGC sets the garbage collector's target to DefaultGCPercent unless
// GOGC is set, and says what is in force: the percentage ("off" when
// collection is off) and whether GOGC was set. The runtime reads GOGC
// itself; this only changes Go's default.
func TuneGC(getenv func(string) string) (percent string, fromEnv bool) {
	v := getenv("GOGC")
	if v == "" {
		debug.SetGCPercent(DefaultGCPercent)
		return strconv.Itoa(DefaultGCPercent), false
	}
	return gogcPercent(v), true
}

// gogcPercent is the target the runtime runs at for GOGC=v, read as the
// runtime reads it (readGOGC): it ignores a value it cannot parse
// ("400%") and runs at 100, which an echo of the variable would hide, and
// a negative target turns collection off as "off" does.
func gogcPercent(v string) string {
	if v == "off" {
		return "off"
	}
	n, err := strconv.ParseInt(v, 10, 32)
	switch {
	case err != nil:
		return "100"
	case n < 0:
		return "off"
	}
	return strconv.FormatInt(n, 10)
}
