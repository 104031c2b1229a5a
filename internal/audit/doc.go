// Package audit records tenant log events (Auth0's log event format and type
// codes) through a store.LogStore. Events carry who, where and why — user,
// connection, client, IP, user agent, upstream error code and trace id — and
// never a password, secret or token: the Event type has no field for them.
package audit
