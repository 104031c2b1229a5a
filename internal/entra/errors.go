package entra

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Class is what the broker branches on when Entra refuses a sign-in. It
// implements error so callers can write errors.Is(err, entra.ClassLocked).
type Class int

const (
	// ClassUnknown is an Entra error this package does not recognise.
	ClassUnknown Class = iota
	// ClassInvalidCredentials: wrong password or unknown user. Entra also
	// answers this way for federated users whose password it cannot check.
	ClassInvalidCredentials
	// ClassMFARequired: the user must do (or register) MFA, which the password
	// grant cannot do.
	ClassMFARequired
	// ClassConditionalAccess: a Conditional Access policy, security defaults or
	// risk policy blocks token issuance.
	ClassConditionalAccess
	// ClassPasswordExpired: the user must change the password first.
	ClassPasswordExpired
	// ClassAccountDisabled: the account is disabled in the directory.
	ClassAccountDisabled
	// ClassLocked: smart lockout, or sign-in from an IP with malicious activity.
	ClassLocked
	// ClassPasswordless: the user has no password Entra can check.
	ClassPasswordless
	// ClassConsentRequired: the app lacks user or admin consent, which the
	// password grant cannot ask for.
	ClassConsentRequired
	// ClassAppMisconfigured: app registration, secret, tenant or resource
	// configuration is wrong; the admin must fix the connection or Entra.
	ClassAppMisconfigured
	// ClassThrottled: Entra asked us to slow down (429 or a throttling code).
	ClassThrottled
	// ClassUnavailable: Entra could not be reached or failed (5xx, timeouts),
	// or the on-premises pass-through authentication agent could not answer.
	ClassUnavailable
	// ClassUserNotAllowed: the directory refuses this user for this app
	// whatever the password: not assigned to it, not in the tenant, or
	// outside the logon hours on-premises AD allows.
	ClassUserNotAllowed
)

var classNames = [...]string{
	ClassUnknown:            "unknown",
	ClassInvalidCredentials: "invalid_credentials",
	ClassMFARequired:        "mfa_required",
	ClassConditionalAccess:  "conditional_access",
	ClassPasswordExpired:    "password_expired",
	ClassAccountDisabled:    "account_disabled",
	ClassLocked:             "locked",
	ClassPasswordless:       "passwordless",
	ClassConsentRequired:    "consent_required",
	ClassAppMisconfigured:   "app_misconfigured",
	ClassThrottled:          "throttled",
	ClassUnavailable:        "unavailable",
	ClassUserNotAllowed:     "user_not_allowed",
}

func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

func (c Class) Error() string { return "entra: " + c.String() }

// Error is a failed call to an Entra token or metadata endpoint. The fields
// mirror Entra's error body; Description is Microsoft's text and may contain
// the username, so Error() leaves it out.
type Error struct {
	StatusCode        int
	Code              string // "error", e.g. invalid_grant
	Description       string // "error_description"
	Codes             []int  // "error_codes"
	AADSTS            int    // the code Class and Hint were derived from; 0 if none
	SubError          string
	Timestamp         string
	TraceID           string
	CorrelationID     string
	ErrorURI          string
	Claims            string // Conditional Access claims challenge, a JSON string
	PasswordChangeURL string
	// RetryAfter is the server's Retry-After, set for throttling and outages.
	RetryAfter time.Duration
	Class      Class
	// Err is the transport error when Entra was not reached or did not answer.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("entra: ")
	switch {
	case e.AADSTS != 0:
		fmt.Fprintf(&b, "AADSTS%d", e.AADSTS)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Class.String())
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.StatusCode)
		if e.TraceID != "" {
			b.WriteString(", trace id " + e.TraceID)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is e's Class, so errors.Is(err, ClassLocked) works.
func (e *Error) Is(target error) bool {
	c, ok := target.(Class)
	return ok && c == e.Class
}

func (e *Error) Unwrap() error { return e.Err }

// Hint tells an administrator what to do about the error. It names Entra
// portal settings, never user data.
func (e *Error) Hint() string {
	if h, ok := aadsts[e.AADSTS]; ok && h.hint != "" && h.class == e.Class {
		return h.hint
	}
	if e.Class == ClassUnknown && e.AADSTS == 0 && e.Code == "" {
		// Not Entra's error shape: something else answered for it.
		return fmt.Sprintf("the answer (HTTP %d) is not an Entra error: check the connection's authority_host and any proxy between Gatehouse and Entra", e.StatusCode)
	}
	return classHints[e.Class]
}

type codeInfo struct {
	class Class
	hint  string
}

// aadsts maps the AADSTS codes a password-grant broker meets to a class and
// an admin hint. Meanings: Microsoft's reference-error-codes page.
var aadsts = map[int]codeInfo{
	50126: {ClassInvalidCredentials, "wrong username or password; for a federated (AD FS) user, password sign-in only works with password hash sync and a Home Realm Discovery policy with AllowCloudPasswordValidation"},
	50034: {ClassInvalidCredentials, "the user does not exist in this tenant; check the username and the connection's tenant domain"},
	// 51004 and 50014 say what 50034 says, that the account does not exist
	// in the directory, so they are answered as it is: anything else would
	// tell a caller which usernames exist.
	51004:   {ClassInvalidCredentials, "the user does not exist in this tenant's directory; check the username and the connection's tenant domain"},
	50014:   {ClassInvalidCredentials, "the user is a guest whose invitation is still pending, so the account does not exist in this tenant yet; the user must redeem the invitation"},
	50064:   {ClassInvalidCredentials, "credential validation failed for the username or password"},
	50053:   {ClassLocked, "the account is locked by smart lockout after too many failed sign-ins, or the sign-in came from an IP with malicious activity; wait about 30 minutes or unlock the user in Entra"},
	50055:   {ClassPasswordExpired, "the user's password has expired; the user must change it (see the password change URL) before password sign-in works again"},
	50144:   {ClassPasswordExpired, "the user's on-premises Active Directory password has expired; the user must change it"},
	50135:   {ClassPasswordExpired, "Entra requires a password change because of account risk"},
	50057:   {ClassAccountDisabled, "the user account is disabled in Entra (accountEnabled is false)"},
	50056:   {ClassPasswordless, "the user has no password in Entra (passwordless or federated without password hash sync), so password sign-in cannot work"},
	50076:   {ClassMFARequired, "this user must do MFA, which the password flow cannot; exclude this app from the MFA requirement or use an interactive flow"},
	50079:   {ClassMFARequired, "this user must register MFA security information, which the password flow cannot do"},
	50072:   {ClassMFARequired, "this user must enroll a second factor, which the password flow cannot do"},
	50074:   {ClassMFARequired, "this user must do MFA, which the password flow cannot"},
	50158:   {ClassMFARequired, "an external security challenge (external MFA) is required, which the password flow cannot satisfy"},
	50078:   {ClassMFARequired, "the user's MFA has expired under the tenant's policies and must be done again, which the password flow cannot; exclude this app from the MFA requirement or use an interactive flow"},
	53003:   {ClassConditionalAccess, "a Conditional Access policy blocks token issuance for this user and app (policy ids are in the claims); exclude the app or use an interactive flow"},
	53000:   {ClassConditionalAccess, "Conditional Access requires a compliant device, which the password flow cannot prove"},
	53001:   {ClassConditionalAccess, "Conditional Access requires a domain-joined device, which the password flow cannot prove"},
	53002:   {ClassConditionalAccess, "Conditional Access requires an approved client app"},
	53004:   {ClassConditionalAccess, "the user is blocked because of risk and must complete MFA registration interactively"},
	53011:   {ClassConditionalAccess, "the user is blocked because of risk in their home tenant"},
	50131:   {ClassConditionalAccess, "a Conditional Access policy failed"},
	530032:  {ClassConditionalAccess, "blocked by a Conditional Access security policy"},
	530035:  {ClassConditionalAccess, "security defaults block legacy or unsafe sign-ins such as the password flow; disable security defaults or use Conditional Access with an exclusion"},
	50005:   {ClassConditionalAccess, "a Conditional Access policy does not allow sign-ins from this device platform"},
	50129:   {ClassConditionalAccess, "Conditional Access requires workplace join (a registered device), which the password flow cannot prove"},
	50125:   {ClassConditionalAccess, "the user must register for self-service password reset, or finish a password reset, in an interactive sign-in first"},
	700020:  {ClassConditionalAccess, "the grant requires user interaction, which the password flow cannot do; use an interactive flow"},
	65001:   {ClassConsentRequired, "grant admin consent for the native app's delegated permissions (App registrations > API permissions > Grant admin consent); the password flow cannot show a consent prompt"},
	65004:   {ClassConsentRequired, "the user declined consent; grant admin consent for the app"},
	90094:   {ClassConsentRequired, "administrator consent is required; grant admin consent for the app's permissions (App registrations > API permissions)"},
	90008:   {ClassConsentRequired, "the app needs consent to at least sign in and read the user profile (Microsoft Graph User.Read); grant admin consent for it"},
	700016:  {ClassAppMisconfigured, "the client ID is not registered in this tenant; check the Application (client) ID, the tenant domain and the cloud"},
	7000215: {ClassAppMisconfigured, "invalid client secret: use the secret's Value, not its Secret ID"},
	7000222: {ClassAppMisconfigured, "the client secret has expired; create a new one under Certificates & secrets and update the connection"},
	7000218: {ClassAppMisconfigured, "enable Allow public client flows (Authentication > Advanced settings) or set the client secret"},
	700025:  {ClassAppMisconfigured, "the app is a public client, so it must not send a secret; remove the client secret from the connection"},
	70002:   {ClassAppMisconfigured, "the client secret does not match the app registration"},
	7000112: {ClassAppMisconfigured, "the application is disabled in this tenant"},
	70001:   {ClassAppMisconfigured, "the application is disabled or not found in this tenant; check the Application (client) ID and that its enterprise application is enabled"},
	65005:   {ClassAppMisconfigured, "the app requests a resource its registration does not list; add it under App registrations > API permissions and grant admin consent"},
	90038:   {ClassAppMisconfigured, "the tenant belongs to another national cloud; set the connection's authority host to that cloud's"},
	500021:  {ClassAppMisconfigured, "tenant restrictions on the network Gatehouse calls Entra from (a proxy's Restrict-Access-To-Tenant header) do not list this tenant; allow it in the proxy's configuration"},
	500022:  {ClassAppMisconfigured, "tenant restrictions on the network Gatehouse calls Entra from (a proxy's Restrict-Access-To-Tenant header) do not list this tenant; allow it in the proxy's configuration"},
	50002:   {ClassAppMisconfigured, "tenant restrictions (restricted proxy access) block sign-ins to this tenant from the network Gatehouse calls Entra from; change the restricted tenant settings"},
	70011:   {ClassAppMisconfigured, "the requested scope is invalid; check the connection's scopes or App ID URI (a resource's /.default cannot be combined with named scopes)"},
	28000:   {ClassAppMisconfigured, "the connection's scopes name more than one resource; Entra issues a token for one resource per request"},
	90002:   {ClassAppMisconfigured, "tenant not found; check the tenant domain and that the authority host is the tenant's cloud"},
	50128:   {ClassAppMisconfigured, "invalid domain name: no tenant matches the tenant domain"},
	50059:   {ClassAppMisconfigured, "no tenant could be identified from the request; set the connection's tenant domain"},
	90014:   {ClassAppMisconfigured, "a required field is missing from the token request; check the connection's configuration"},
	900144:  {ClassAppMisconfigured, "a required parameter is missing from the token request; check the connection's configuration"},
	9002313: {ClassAppMisconfigured, "Entra rejected the request as malformed; check the resource, scopes and tenant of the connection"},
	9001023: {ClassAppMisconfigured, "the password grant is not supported on /common or /consumers; use the tenant domain or organizations"},
	90124:   {ClassAppMisconfigured, "this resource is not supported over /common or /consumers; use the tenant domain"},
	90130:   {ClassAppMisconfigured, "this app is not supported over /common or /consumers; use the tenant domain"},
	50194:   {ClassAppMisconfigured, "the app is not multi-tenant; turn off the common endpoint or make the app multi-tenant"},
	500011:  {ClassAppMisconfigured, "the resource (App ID URI) was not found in the tenant; check the App ID URI and that the API's app is registered there"},
	50001:   {ClassAppMisconfigured, "the resource is disabled or does not exist; check the App ID URI"},
	50105:   {ClassUserNotAllowed, "the user is not assigned to the application, and its enterprise application requires assignment; assign the user (or a group of theirs) under Enterprise applications > Users and groups, or set Assignment required to No"},
	50020:   {ClassUserNotAllowed, "the user's account is not in this tenant (a user of another organization who was not invited); invite them as a guest (a personal Microsoft account cannot use the password flow even then), or use a multi-tenant connection (useCommonEndpoint with allowed_tenants)"},
	80012:   {ClassUserNotAllowed, "on-premises Active Directory allows this user to sign in only during their logon hours (pass-through authentication); the user can sign in within them, or an AD admin can change the account's logon hours"},
	90072:   {ClassUserNotAllowed, "the account the user signs in with does not exist in this tenant, or its on-premises ImmutableID does not match; add it as an external user (guest) or fix the sync anchor"},
	500208:  {ClassUserNotAllowed, "the account type is not valid for this tenant, e.g. a personal Microsoft account where only work or school accounts sign in; personal accounts cannot use the password flow"},
	500212:  {ClassUserNotAllowed, "the user's home tenant has a cross-tenant outbound access policy that does not allow this tenant"},
	500213:  {ClassUserNotAllowed, "this tenant's cross-tenant inbound access policy does not allow users of this user's organization"},
	54000:   {ClassUserNotAllowed, "the user is a minor and the tenant's legal age group rule blocks the sign-in"},
	80001:   {ClassUnavailable, "the pass-through authentication agent cannot reach on-premises Active Directory; check the agent's server and its connection to a domain controller"},
	80002:   {ClassUnavailable, "the pass-through authentication agent's password validation timed out; check the agent's server and Active Directory's response time"},
	80005:   {ClassUnavailable, "Entra got an unexpected answer from the pass-through authentication agent; retry, and check the agent's event log if it persists"},
	80007:   {ClassUnavailable, "the pass-through authentication agent could not validate the password against Active Directory; check the agent's event log"},
	80010:   {ClassUnavailable, "the pass-through authentication agent cannot decrypt the password; re-register or reinstall the agent"},
	80013:   {ClassUnavailable, "the clock of the pass-through authentication agent's server is skewed from Active Directory's; fix time synchronization on the agent's server"},
	80014:   {ClassUnavailable, "the pass-through authentication agent answered after Entra's time limit; check the agent's server load and its connection to a domain controller"},
	90055:   {ClassThrottled, "Entra is throttling this tenant; retry later"},
	90024:   {ClassThrottled, "Entra's request budget is exceeded; retry later"},
	50196:   {ClassThrottled, "Entra detected a loop of identical requests; slow down"},
	90033:   {ClassUnavailable, "an Entra directory service is temporarily unavailable; retry later"},
	90006:   {ClassUnavailable, "an external server returned a retryable error; retry later"},
	50000:   {ClassUnavailable, "Entra's sign-in service had an error; retry later"},
	50033:   {ClassUnavailable, "Entra had a transient error; retry later"},
	90012:   {ClassUnavailable, "an Entra request timed out; retry later"},
	90090:   {ClassUnavailable, "Entra's directory service was temporarily unavailable; retry later"},
	90091:   {ClassUnavailable, "Entra could not reach its directory service; retry later"},
}

// classHints serve codes not in aadsts, e.g. one classed by its error
// string or suberror.
var classHints = map[Class]string{
	ClassUnknown:            "unrecognised Entra error; look the AADSTS code up at https://login.microsoftonline.com/error",
	ClassInvalidCredentials: "Entra refused the username or password",
	ClassMFARequired:        "this user must do MFA, which the password flow cannot; exclude this app from the MFA requirement or use an interactive flow",
	ClassPasswordExpired:    "the user must change the password before password sign-in works again",
	ClassAccountDisabled:    "the user account is disabled in Entra",
	ClassLocked:             "the account is locked in Entra; wait, or unlock the user in Entra",
	ClassPasswordless:       "the user has no password Entra can check, so password sign-in cannot work",
	ClassConsentRequired:    "the app lacks consent for the permissions it requests; grant admin consent (App registrations > API permissions)",
	ClassUserNotAllowed:     "Entra does not allow this user to sign in to this application; look the AADSTS code up at https://login.microsoftonline.com/error",
	ClassThrottled:          "Entra is throttling requests; retry after the indicated delay",
	ClassUnavailable:        "Entra is unreachable or failing; retry later",
	ClassAppMisconfigured:   "the app registration or connection configuration is wrong",
	ClassConditionalAccess: "Entra requires an interactive step (MFA, a device or app policy) that the password flow cannot do; " +
		"look the AADSTS code up at https://login.microsoftonline.com/error",
}

// Entra's "error" string is not stable per code, so it is only a fallback
// when no error code is recognised. interaction_required and the suberrors
// basic_action, additional_action and message_only mean the user must act
// in an interactive sign-in (ED reference-error-codes.md "error" table;
// MSAL.NET UiRequiredExceptionClassification): for the password grant that
// is a policy it cannot satisfy, not a misconfigured connection.
var classByErrorString = map[string]Class{
	"interaction_required":    ClassConditionalAccess,
	"basic_action":            ClassConditionalAccess,
	"additional_action":       ClassConditionalAccess,
	"message_only":            ClassConditionalAccess,
	"invalid_client":          ClassAppMisconfigured,
	"invalid_resource":        ClassAppMisconfigured,
	"invalid_scope":           ClassAppMisconfigured,
	"invalid_tenant":          ClassAppMisconfigured,
	"unsupported_grant_type":  ClassAppMisconfigured,
	"user_password_expired":   ClassPasswordExpired,
	"consent_required":        ClassConsentRequired,
	"temporarily_unavailable": ClassUnavailable,
}

var aadstsInText = regexp.MustCompile(`AADSTS(\d+)`)

// newError builds an *Error from a non-2xx response. body may be anything: a
// proxy or an outage can answer with HTML.
func newError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	var w struct {
		Error             string          `json:"error"`
		Description       string          `json:"error_description"`
		Codes             []int           `json:"error_codes"`
		Timestamp         string          `json:"timestamp"`
		TraceID           string          `json:"trace_id"`
		CorrelationID     string          `json:"correlation_id"`
		ErrorURI          string          `json:"error_uri"`
		SubError          string          `json:"suberror"`
		Claims            json.RawMessage `json:"claims"`
		PasswordChangeURL string          `json:"password_change_url"`
	}
	if json.Unmarshal(body, &w) == nil {
		e.Code, e.Description, e.Codes = w.Error, w.Description, w.Codes
		e.Timestamp, e.TraceID, e.CorrelationID = w.Timestamp, w.TraceID, w.CorrelationID
		e.ErrorURI, e.SubError, e.PasswordChangeURL = w.ErrorURI, w.SubError, w.PasswordChangeURL
		e.Claims = rawString(w.Claims)
	}
	e.classify(resp.Header.Get("Retry-After"))
	return e
}

// rawString accepts claims as a JSON string (what Entra sends) or, leniently,
// as an object.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	return string(raw)
}

func (e *Error) classify(retryAfter string) {
	codes := e.Codes
	if len(codes) == 0 {
		for _, m := range aadstsInText.FindAllStringSubmatch(e.Description, -1) {
			if n, err := strconv.Atoi(m[1]); err == nil {
				codes = append(codes, n)
			}
		}
	}
	// Entra lists a wrapper before the specific code ([70002, 50126]: "error
	// validating credentials" then "invalid username or password"), so the
	// last recognised code is the most precise.
	for i := len(codes) - 1; i >= 0; i-- {
		if info, ok := aadsts[codes[i]]; ok {
			e.AADSTS, e.Class = codes[i], info.class
			break
		}
	}
	if e.AADSTS == 0 && len(codes) > 0 {
		e.AADSTS = codes[len(codes)-1]
	}
	if e.Class == ClassUnknown {
		if c, ok := classByErrorString[e.SubError]; ok {
			e.Class = c
		} else if c, ok := classByErrorString[e.Code]; ok {
			e.Class = c
		}
	}
	// A failing server's body is no verdict on the user or the app: the
	// sign-in did not complete, whatever code the body carries.
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		e.Class = ClassThrottled
	case e.StatusCode >= 500 && e.Class != ClassThrottled:
		e.Class = ClassUnavailable
	}
	if e.Class == ClassThrottled || e.Class == ClassUnavailable {
		e.RetryAfter = parseRetryAfter(retryAfter, time.Now())
	}
}

// maxRetryAfter caps the delay taken from an upstream Retry-After. The
// broker hands it on to every app whose login failed, so an absurd value
// (or one past time.Duration's range) must not become a negative delay or
// an outage of days.
const maxRetryAfter = 5 * time.Minute

// parseRetryAfter reads delta-seconds or an HTTP date (RFC 9110 §10.2.3),
// capped at maxRetryAfter. Microsoft Graph also sends fractional seconds
// ("Retry-After: 2.128" in its throttling.md sample), rounded up here so a
// retry never comes early.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	whole, frac, _ := strings.Cut(strings.TrimSpace(v), ".")
	if strings.Trim(frac, "0123456789") == "" {
		if n, err := strconv.ParseUint(whole, 10, 64); err == nil {
			if strings.Trim(frac, "0") != "" && n < math.MaxUint64 {
				n++
			}
			return time.Duration(min(n, uint64(maxRetryAfter/time.Second))) * time.Second
		} else if errors.Is(err, strconv.ErrRange) {
			return maxRetryAfter
		}
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now).Round(time.Second), maxRetryAfter)
	}
	return 0
}

// GraphError is a Microsoft Graph error body:
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
// The legacy Azure AD Graph's {"odata.error":{...}} is read into the same type.
type GraphError struct {
	StatusCode      int
	Code            string // e.g. InvalidAuthenticationToken, Authorization_RequestDenied
	Message         string
	RequestID       string
	ClientRequestID string
	Date            string
	RetryAfter      time.Duration
}

func (e *GraphError) Error() string {
	msg := "entra: graph HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	return msg
}

func newGraphError(resp *http.Response, body []byte) *GraphError {
	e := &GraphError{StatusCode: resp.StatusCode}
	var w struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				Date            string `json:"date"`
				RequestID       string `json:"request-id"`
				ClientRequestID string `json:"client-request-id"`
			} `json:"innerError"`
		} `json:"error"`
		OData struct {
			Code    string `json:"code"`
			Message struct {
				Value string `json:"value"`
			} `json:"message"`
		} `json:"odata.error"`
	}
	if json.Unmarshal(body, &w) == nil {
		e.Code, e.Message = w.Error.Code, w.Error.Message
		e.RequestID, e.ClientRequestID, e.Date = w.Error.InnerError.RequestID, w.Error.InnerError.ClientRequestID, w.Error.InnerError.Date
		if e.Code == "" {
			e.Code, e.Message = w.OData.Code, w.OData.Message.Value
		}
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("request-id")
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}
