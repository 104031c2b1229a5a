// Package connection defines what Gatehouse asks of an upstream identity
// provider ("connection" in Auth0's words), independent of HTTP handlers and
// storage: a PasswordConnector checks a username and password upstream and
// returns the Identity the provider vouches for, or an *Error whose Kind the
// token endpoint turns into one documented answer.
//
// Strategies live in sub-packages (azuread for "waad") and are looked up by
// strategy name in a Registry. A Trace attached to the context records each
// upstream step with its timing, for `gatehouse try`.
package connection
