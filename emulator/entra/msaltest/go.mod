// Module msaltest drives the Entra emulator with Microsoft's MSAL for Go.
// It is a module of its own so that MSAL stays out of Gatehouse's
// dependencies: the broker's Entra client does not use it.
module github.com/gatehouse/gatehouse/emulator/entra/msaltest

go 1.26.8

require (
	github.com/AzureAD/microsoft-authentication-library-for-go v1.9.0
	github.com/gatehouse/gatehouse v0.0.0-00010101000000-000000000000
)

require (
	github.com/golang-jwt/jwt/v5 v5.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/kylelemons/godebug v1.1.0 // indirect
	github.com/pkg/browser v0.0.0-20210911075715-681adbf594b8 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/gatehouse/gatehouse => ../../..
