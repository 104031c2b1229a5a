// Package config holds Gatehouse's typed configuration: defaults, the
// GATEHOUSE_* environment variables, command-line flags that override them,
// and the validation that runs before anything starts.
package config
