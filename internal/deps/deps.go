package deps
import (
 _ "github.com/go-jose/go-jose/v4"
 _ "github.com/coreos/go-oidc/v3/oidc"
 _ "modernc.org/sqlite"
 _ "github.com/jackc/pgx/v5/pgxpool"
 _ "github.com/spf13/cobra"
 _ "go.yaml.in/yaml/v3"
 _ "golang.org/x/term"
)
