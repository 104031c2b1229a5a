package entra

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// stsError is an error of the login endpoints. Its JSON shape follows the
// reference-error-codes page (reference §3.1): error, error_description
// starting "AADSTSnnnnn:" and ending with the Trace ID, Correlation ID and
// Timestamp lines, error_codes, timestamp, trace_id, correlation_id,
// error_uri, plus suberror, claims and password_change_url where Entra sets
// them. Statuses: 400 by default, 401 for client authentication failures
// (reference §3.1, v1-protocols-oauth-code "HTTP status codes").
type stsError struct {
	status   int
	err      string
	code     int
	text     string
	suberror string
	claims   string
	pwdURL   string
	// wrapper is a code Entra puts before code in error_codes and in the
	// description ("AADSTS70002: Error validating credentials. AADSTS50126:
	// ..."), with its text; 0 for none.
	wrapper     int
	wrapperText string
}

type stsErrorBody struct {
	Error             string `json:"error"`
	ErrorDescription  string `json:"error_description"`
	ErrorCodes        []int  `json:"error_codes"`
	Timestamp         string `json:"timestamp"`
	TraceID           string `json:"trace_id"`
	CorrelationID     string `json:"correlation_id"`
	ErrorURI          string `json:"error_uri"`
	Suberror          string `json:"suberror,omitempty"`
	Claims            string `json:"claims,omitempty"`
	PasswordChangeURL string `json:"password_change_url,omitempty"`
}

const stsTimeFormat = "2006-01-02 15:04:05Z"

func (s *Server) stsBody(r *http.Request, e *stsError) stsErrorBody {
	ts := s.now().UTC().Format(stsTimeFormat)
	trace := newGUID()
	corr := correlationID(r)
	desc := fmt.Sprintf("AADSTS%d: %s", e.code, e.text)
	codes := []int{e.code}
	if e.wrapper != 0 {
		desc = fmt.Sprintf("AADSTS%d: %s ", e.wrapper, e.wrapperText) + desc
		codes = []int{e.wrapper, e.code}
	}
	return stsErrorBody{
		Error:             e.err,
		ErrorDescription:  fmt.Sprintf("%s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", desc, trace, corr, ts),
		ErrorCodes:        codes,
		Timestamp:         ts,
		TraceID:           trace,
		CorrelationID:     corr,
		ErrorURI:          "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.code),
		Suberror:          e.suberror,
		Claims:            e.claims,
		PasswordChangeURL: e.pwdURL,
	}
}

func (s *Server) writeSTSError(w http.ResponseWriter, r *http.Request, e *stsError) {
	s.counters.add("error:AADSTS" + strconv.Itoa(e.code))
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, e.status, s.stsBody(r, e))
}

// correlationID echoes the caller's client-request-id as Entra does, so a
// client can match its logs with ours.
func correlationID(r *http.Request) string {
	if id := r.Header.Get("client-request-id"); id != "" {
		return id
	}
	return newGUID()
}

func badRequest(errStr string, code int, text string) *stsError {
	return &stsError{status: http.StatusBadRequest, err: errStr, code: code, text: text}
}

func invalidClient(code int, text string) *stsError {
	return &stsError{status: http.StatusUnauthorized, err: "invalid_client", code: code, text: text}
}

// The catalogue below takes its texts from ED reference-error-codes.md and
// the live texts quoted in reference §3.2; error strings and statuses are
// the observed ones cited there.
func errInvalidCredentials() *stsError {
	return badRequest("invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
}

// errFederatedCredentials is the only published answer for a federated
// user whose password Entra cannot check (no password hash sync, or no
// AllowCloudPasswordValidation): the HDInsight ESP troubleshooting doc
// (reference §1.4) shows error_codes [70002, 50126] and this description.
func errFederatedCredentials() *stsError {
	e := badRequest("invalid_grant", 50126, "Invalid username or password")
	e.wrapper, e.wrapperText = 70002, "Error validating credentials."
	return e
}

// errNoPassword is Entra's answer for a user without a password in the
// directory (passwordless methods only), as captured in
// MicrosoftDocs/azure-docs#49763 (reference §3.2 row 50056).
func errNoPassword() *stsError {
	return badRequest("invalid_grant", 50056, "Invalid or missing password: password does not exist in the directory for this user.")
}

func errUserNotFound(tid string) *stsError {
	// Entra hides the UPN ("{EUII Hidden}") in this text since 2022.
	return badRequest("invalid_grant", 50034, "The user account {EUII Hidden} does not exist in the "+tid+" directory. To sign into this application, the account must be added to the directory.")
}

// errLocked follows the only published 50053 body, in the HDInsight ESP
// troubleshooting doc (reference §1.4): unauthorized_client, 400.
func errLocked() *stsError {
	return badRequest("unauthorized_client", 50053, "The account is locked, you've tried to sign in too many times with an incorrect user ID or password.")
}

func errPasswordExpired() *stsError {
	// HDInsight ESP troubleshooting doc (reference §1.4): error and suberror
	// user_password_expired plus password_change_url.
	e := badRequest("user_password_expired", 50055, "Password is expired.")
	e.suberror = "user_password_expired"
	e.pwdURL = "https://portal.microsoftonline.com/ChangePassword.aspx"
	return e
}

func errDisabled() *stsError {
	return badRequest("invalid_grant", 50057, "The user account is disabled.")
}

// capClaims is the claims challenge Entra attaches to Conditional Access
// failures (reference §3.1, "claims" row).
func capClaims(policy string) string {
	return `{"access_token":{"capolids":{"essential":true,"values":["` + policy + `"]}}}`
}

// caPolicyID names the emulated Conditional Access policy in claims
// challenges.
const caPolicyID = "7f1e2d3c-4b5a-4968-8776-655443322110"

// errMFARequired matches ROPC captures from 2020-2024 (e.g. az CLI and
// public sample logs): invalid_grant, suberror basic_action, the resource's
// appId in the text, and no claims challenge.
func errMFARequired(resourceAppID string) *stsError {
	e := badRequest("invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '"+resourceAppID+"'.")
	e.suberror = "basic_action"
	return e
}

func errMFARegistration(resourceAppID string) *stsError {
	e := badRequest("invalid_grant", 50079, "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '"+resourceAppID+"'.")
	e.suberror = "basic_action"
	return e
}

func errConditionalAccess() *stsError {
	e := badRequest("invalid_grant", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	e.suberror = "message_only"
	e.claims = capClaims(caPolicyID)
	return e
}

func errConsent(app *Application) *stsError {
	e := badRequest("invalid_grant", 65001, "The user or administrator has not consented to use the application with ID '"+app.AppID+"' named '"+app.DisplayName+"'. Send an interactive authorization request for this user and resource.")
	e.suberror = "consent_required"
	return e
}

func errAppNotFound(appID, tenantName string) *stsError {
	return badRequest("unauthorized_client", 700016, "Application with identifier '"+appID+"' was not found in the directory '"+tenantName+"'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.")
}

func errBadSecret(appID string) *stsError {
	return invalidClient(7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+appID+"'.")
}

func errSecretExpired(appID string) *stsError {
	return invalidClient(7000222, "The provided client secret keys for app '"+appID+"' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds")
}

func errSecretRequired() *stsError {
	return invalidClient(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

func errPublicClientSecret() *stsError {
	return invalidClient(700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
}

func errTenantNotFound(tenant string, discovery bool) *stsError {
	// Discovery documents answer invalid_tenant, the token endpoint
	// invalid_request (reference §2.4, §3.2 row 90002).
	errStr := "invalid_request"
	if discovery {
		errStr = "invalid_tenant"
	}
	return badRequest(errStr, 90002, "Tenant '"+tenant+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.")
}

func errMissingCredentialField(field string) *stsError {
	return badRequest("invalid_request", 90014, "The required field '"+field+"' is missing from the credential. Ensure that you have all the necessary parameters for the login request.")
}

func errMissingParameter(name string) *stsError {
	return badRequest("invalid_request", 900144, "The request body must contain the following parameter: '"+name+"'.")
}

func errResourceNotFound(res, tenantName string) *stsError {
	return badRequest("invalid_resource", 500011, "The resource principal named "+res+" was not found in the tenant named "+tenantName+". This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.")
}

func errNoTenant() *stsError {
	return badRequest("invalid_request", 50059, "No tenant-identifying information found in either the request or implied by any provided credentials.")
}

func errMalformed() *stsError {
	return badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
}

func errCommonNotSupported() *stsError {
	return badRequest("invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
}

func errUnsupportedGrant(g string) *stsError {
	return badRequest("unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+g+"'.")
}

func errInvalidGrant() *stsError {
	return badRequest("invalid_grant", 70000, "Provided grant is invalid or malformed.")
}

func errGrantExpired() *stsError {
	return badRequest("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
}

func errCodeRedeemed() *stsError {
	return badRequest("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
}

func errPKCE() *stsError {
	return badRequest("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
}

// errInvalidScope uses the live 70011 text of Azure/azure-sdk-for-net#9076
// and AzureAD/microsoft-authentication-library-for-js#6069 (2019-2023),
// which echoes the scope parameter unquoted.
func errInvalidScope(scope string) *stsError {
	return badRequest("invalid_scope", 70011, "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope "+scope+" is not valid.")
}

func errDefaultCombined(scope string) *stsError {
	e := errInvalidScope(scope)
	e.text += " .default scope can't be combined with resource-specific scopes."
	return e
}

// errMultipleResources is AADSTS28000 as quoted in
// AzureAD/microsoft-authentication-library-for-js#1487 and
// Earlybyte/aad_oauth#328. No capture shows its error string; invalid_scope
// is RFC 6749's for a scope the server refuses, and 70011's.
func errMultipleResources(scope string) *stsError {
	return badRequest("invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope "+scope+" is not valid.")
}

func errPostOnly(method string) *stsError {
	return badRequest("invalid_request", 900561, "The endpoint only accepts POST requests. Received a "+method+" request.")
}

// Injected faults use the transient codes of reference §3.2 (90055
// TenantThrottlingError, 50000 TokenIssuanceError).
func errThrottled() *stsError {
	return &stsError{status: http.StatusTooManyRequests, err: "temporarily_unavailable", code: 90055, text: "The tenant is being throttled. Retry after the period in the Retry-After header."}
}

func errServer(status int) *stsError {
	return &stsError{status: status, err: "temporarily_unavailable", code: 50000, text: "There was an error issuing a token or an issue with our sign-in service."}
}

// writeGraphError writes Microsoft Graph's error shape (reference §5.1):
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
func (s *Server) writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	s.writeGraphErrorInner(w, r, status, code, message, nil)
}

// writeGraphErrorInner adds extra members to innerError. The
// client-request-id header and member echo the caller's; without one Graph
// reuses its request-id (captures in reference §5.1 and
// microsoftgraph/microsoft-graph-docs issues: the two GUIDs are equal).
func (s *Server) writeGraphErrorInner(w http.ResponseWriter, r *http.Request, status int, code, message string, extra map[string]string) {
	s.counters.add("error:graph:" + code)
	reqID := newGUID()
	clientReqID := r.Header.Get("client-request-id")
	if clientReqID == "" {
		clientReqID = reqID
	}
	w.Header().Set("request-id", reqID)
	w.Header().Set("client-request-id", clientReqID)
	inner := map[string]string{
		"date":              s.now().UTC().Format("2006-01-02T15:04:05"),
		"request-id":        reqID,
		"client-request-id": clientReqID,
	}
	for k, v := range extra {
		inner[k] = v
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":       code,
		"message":    message,
		"innerError": inner,
	}})
}

// writeAADGraphError writes Azure AD Graph's OData v3 error (reference §5.2).
func (s *Server) writeAADGraphError(w http.ResponseWriter, status int, code, message string) {
	s.counters.add("error:aadgraph:" + code)
	writeJSON(w, status, map[string]any{"odata.error": map[string]any{
		"code":    code,
		"message": map[string]string{"lang": "en", "value": message},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, "application/json; charset=utf-8", b)
}

func writeRaw(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
