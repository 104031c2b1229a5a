package management_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestRefreshTokensOfUnknownUser: revoking the refresh tokens of a user
// that does not exist is a 404, as listing them is (node-auth0 declares
// NotFoundError for both), not a success that revoked nothing: an
// administrator who mistyped the id must not believe the tokens revoked.
func TestRefreshTokensOfUnknownUser(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			for _, method := range []string{"GET", "DELETE"} {
				status, _, v := a.call(method, "/api/v2/users/waad%7Cnobody/refresh-tokens", nil)
				errorIs(t, status, v, http.StatusNotFound, "inexistent_user", "The user does not exist.")
			}
		})
	}
}
