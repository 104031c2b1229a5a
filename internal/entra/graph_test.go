package entra

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGraph serves /v1.0/me and paged memberOf/transitiveMemberOf.
func fakeGraph(t *testing.T, pageSize int) (*httptest.Server, *int) {
	t.Helper()
	var calls int
	var srv *httptest.Server
	objects := func(transitive bool) []map[string]any {
		var out []map[string]any
		for i := range 7 {
			out = append(out, map[string]any{"@odata.type": "#microsoft.graph.group", "id": fmt.Sprintf("g-%d", i), "displayName": fmt.Sprintf("Group %d", i)})
			if i == 2 {
				out = append(out, map[string]any{"@odata.type": "#microsoft.graph.directoryRole", "id": "r-1", "displayName": "Global Reader"})
			}
		}
		if transitive {
			out = append(out, map[string]any{"@odata.type": "#microsoft.graph.group", "id": "g-nested", "displayName": "Nested"})
		}
		return out
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0/me", func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Header.Get("Authorization") != "Bearer graph-token" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure. Invalid audience.","innerError":{"date":"2023-04-20T01:33:53","request-id":"rid","client-request-id":"rid"}}}`)
			return
		}
		if got := r.URL.Query().Get("$select"); got != "displayName,department,onPremisesSamAccountName" {
			t.Errorf("$select %q", got)
		}
		fmt.Fprint(w, `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users(displayName,department,onPremisesSamAccountName)/$entity","displayName":"Adele Vance","department":"Retail","onPremisesSamAccountName":null}`)
	})
	list := func(transitive bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			calls++
			if r.URL.Query().Get("$select") != "id,displayName" {
				t.Errorf("query %s", r.URL.RawQuery)
			}
			all := objects(transitive)
			skip, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
			end := min(skip+pageSize, len(all))
			page := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": all[skip:end]}
			if end < len(all) {
				page["@odata.nextLink"] = srv.URL + r.URL.Path + "?$select=id,displayName&$top=999&$skiptoken=" + strconv.Itoa(end)
			}
			json.NewEncoder(w).Encode(page)
		}
	}
	mux.HandleFunc("GET /v1.0/me/memberOf", list(false))
	mux.HandleFunc("GET /v1.0/me/transitiveMemberOf", list(true))
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestGraphMe(t *testing.T) {
	srv, _ := fakeGraph(t, 3)
	c := NewClient(Options{})
	me, err := c.Me(context.Background(), srv.URL, "graph-token", []string{"displayName", "department", "onPremisesSamAccountName"})
	if err != nil {
		t.Fatal(err)
	}
	if me["displayName"] != "Adele Vance" || me["department"] != "Retail" || len(me) != 3 {
		t.Fatalf("me = %v", me)
	}
	_, err = c.Me(context.Background(), srv.URL, "api-token", nil)
	var ge *GraphError
	if !errors.As(err, &ge) || ge.StatusCode != 401 || ge.Code != "InvalidAuthenticationToken" {
		t.Fatalf("got %v", err)
	}
}

func TestGraphMemberOfPaging(t *testing.T) {
	srv, calls := fakeGraph(t, 3)
	c := NewClient(Options{})
	groups, err := c.MemberOf(context.Background(), srv.URL, "graph-token", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 7 || groups[0] != (Group{ID: "g-0", DisplayName: "Group 0"}) || groups[6].ID != "g-6" || *calls != 3 {
		t.Fatalf("groups %v in %d calls", groups, *calls)
	}
	groups, err = c.MemberOf(context.Background(), srv.URL, "graph-token", true, 0)
	if err != nil || len(groups) != 8 || groups[7].DisplayName != "Nested" {
		t.Fatalf("transitive: %v %v", groups, err)
	}
	*calls = 0
	groups, err = c.MemberOf(context.Background(), srv.URL, "graph-token", true, 4)
	if err != nil || len(groups) != 4 || *calls != 2 {
		t.Fatalf("capped: %v in %d calls, %v", groups, *calls, err)
	}
}

func TestGraphNextLinkElsewhere(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value":[],"@odata.nextLink":"https://evil.example/v1.0/me/memberOf?$skiptoken=x"}`)
	}))
	defer srv.Close()
	if _, err := NewClient(Options{}).MemberOf(context.Background(), srv.URL, "graph-token", false, 0); err == nil {
		t.Fatal("followed a nextLink to another host")
	}
}

func TestAccessTokenAudience(t *testing.T) {
	jwtWith := func(payload string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	tests := []struct {
		payload string
		aud     string
		graph   bool
		legacy  bool
	}{
		{`{"aud":"https://graph.microsoft.com"}`, "https://graph.microsoft.com", true, false},
		{`{"aud":"00000003-0000-0000-c000-000000000000"}`, "00000003-0000-0000-c000-000000000000", true, false},
		{`{"aud":"https://graph.windows.net/"}`, "https://graph.windows.net/", false, true},
		{`{"aud":"00000002-0000-0000-c000-000000000000"}`, "00000002-0000-0000-c000-000000000000", false, true},
		{`{"aud":["api://gatehouse-api"]}`, "api://gatehouse-api", false, false},
	}
	for _, tt := range tests {
		aud, err := AccessTokenAudience(jwtWith(tt.payload))
		if err != nil || aud != tt.aud || IsGraphAudience(aud) != tt.graph || IsLegacyGraphAudience(aud) != tt.legacy {
			t.Errorf("%s: aud %q err %v", tt.payload, aud, err)
		}
	}
	for _, bad := range []string{"opaque", jwtWith(`{"sub":"x"}`), "a.!!!.c", jwtWith(`{"aud":[]}`)} {
		if _, err := AccessTokenAudience(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestGraphRedirectNotFollowed: a redirect is a nextLink the same-origin
// check never sees. Go's client keeps the Authorization header on a
// redirect to the same host name on any port or scheme, and follows one to
// any other host without it; neither must receive the request.
func TestGraphRedirectNotFollowed(t *testing.T) {
	var elsewhere, bearer atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if r.Header.Get("Authorization") != "" {
			bearer.Add(1)
		}
		fmt.Fprint(w, `{"id":"x","value":[{"@odata.type":"#microsoft.graph.group","id":"evil","displayName":"Admins"}]}`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := NewClient(Options{})
	if _, err := c.Me(context.Background(), srv.URL, "graph-token", nil); err == nil {
		t.Error("/me: followed a redirect")
	}
	if _, err := c.MemberOf(context.Background(), srv.URL, "graph-token", false, 0); err == nil {
		t.Error("memberOf: followed a redirect")
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("redirect followed %d times, %d with the token", elsewhere.Load(), bearer.Load())
	}
}

// TestGraphPagingEnds: a Graph (or a proxy before it) whose nextLink never
// runs out, looping on itself or counting up without end, must not hold
// the login forever nor grow its group list without bound.
func TestGraphPagingEnds(t *testing.T) {
	for name, next := range map[string]func(r *http.Request, n int) string{
		"same link": func(r *http.Request, n int) string { return r.URL.String() },
		"new links": func(r *http.Request, n int) string { return r.URL.Path + "?$skiptoken=" + strconv.Itoa(n) },
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				page := map[string]any{
					"value":           []map[string]any{{"@odata.type": "#microsoft.graph.group", "id": fmt.Sprintf("g-%d", n), "displayName": "G"}},
					"@odata.nextLink": srv.URL + next(r, int(n)),
				}
				json.NewEncoder(w).Encode(page)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			groups, err := NewClient(Options{}).MemberOf(ctx, srv.URL, "graph-token", true, 0)
			if err == nil || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Fatalf("%d groups in %d calls, err %v", len(groups), calls.Load(), err)
			}
			if n := calls.Load(); n > maxGraphPages {
				t.Fatalf("%d calls", n)
			}
		})
	}
}
