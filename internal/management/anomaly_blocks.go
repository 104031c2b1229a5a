package management

import (
	"net/http"
	"net/netip"
)

func (a *API) anomalyBlockRoutes(route routeFunc) {
	route("GET /api/v2/anomaly/blocks/ips/{id}", "read:anomaly_blocks", a.getIPBlock)
	route("DELETE /api/v2/anomaly/blocks/ips/{id}", "delete:anomaly_blocks", a.deleteIPBlock)
}

// blockedIP is the path's address. Auth0 types it as an IPv4 or IPv6
// address; anything else names no client.
func blockedIP(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := netip.ParseAddr(id); err != nil {
		return "", &Error{Status: http.StatusBadRequest, ErrorCode: "invalid_uri",
			Message: "Path validation error: 'String does not match any of the formats ipv4, ipv6' on property id."}
	}
	return id, nil
}

// getIPBlock answers Auth0's check of a suspicious IP throttling block:
// 200 when the address's logins are refused now, else 404.
func (a *API) getIPBlock(w http.ResponseWriter, r *http.Request) {
	ip, err := blockedIP(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	blocked, err := a.attack.IPBlocked(r.Context(), ip)
	switch {
	case err != nil:
		WriteError(w, internalError(err))
	case !blocked:
		WriteError(w, NotFound("IP address specified is not currently blocked.", ""))
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// deleteIPBlock lifts the address's suspicious IP throttling: its bucket
// is full again. Lifting an address that is not blocked is no error.
func (a *API) deleteIPBlock(w http.ResponseWriter, r *http.Request) {
	ip, err := blockedIP(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if _, err := a.attack.UnblockIP(r.Context(), ip); err != nil {
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
