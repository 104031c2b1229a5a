package management

import "net/http"

// RouteScopes maps every registered route pattern to the scope it
// requires, so that the black-box tests can prove each one is enforced.
func RouteScopes() map[string]string {
	m := map[string]string{}
	(&API{}).routes(func(pattern, scope string, _ http.HandlerFunc) { m[pattern] = scope })
	return m
}
