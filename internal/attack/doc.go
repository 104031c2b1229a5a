// Package attack protects logins before they reach the upstream identity
// provider: Auth0's brute-force protection (failures per identifier and
// IP), suspicious IP throttling (a token bucket per IP) and a per-user
// failure budget across all IPs that keeps Gatehouse from tripping the
// upstream's account lockout (Entra ID Smart Lockout) on a real user's
// behalf. It also decides which address is the end user's.
//
// Every decision is taken in the database in one statement before the
// upstream call (store.AttackStore), so parallel attempts cannot make
// more upstream calls than a limit allows.
package attack
