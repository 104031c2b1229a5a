package management

// Scopes is every scope the Management API checks. A bootstrap admin
// client is granted all of them.
var Scopes = []string{
	"read:clients", "create:clients", "update:clients", "delete:clients", "read:client_keys", "update:client_keys",
	"read:connections", "create:connections", "update:connections", "delete:connections",
	"read:users", "create:users", "update:users", "delete:users", "read:user_idp_tokens",
	"read:tenant_settings", "update:tenant_settings",
	"read:logs",
	"read:signing_keys", "create:signing_keys", "update:signing_keys",
	"read:resource_servers", "create:resource_servers", "update:resource_servers", "delete:resource_servers",
	"read:client_grants", "create:client_grants", "update:client_grants", "delete:client_grants",
	"read:refresh_tokens", "delete:refresh_tokens",
	"read:device_credentials", "delete:device_credentials",
	"read:client_credentials", "create:client_credentials", "update:client_credentials", "delete:client_credentials",
	"read:attack_protection", "update:attack_protection",
	"read:anomaly_blocks", "delete:anomaly_blocks",
}
