package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the secrets sealed in the database",
	}
	cmd.AddCommand(newRotateMasterKeyCmd())
	return cmd
}

func newRotateMasterKeyCmd() *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "rotate-master-key",
		Short: "Re-wrap every sealed secret under a new master key, online",
		Long: `Re-wrap every sealed secret (client secrets, connection secrets, signing
keys, stored upstream tokens) under a new master key, in one transaction.
Only the per-secret data keys are re-encrypted; no secret is decrypted to
disk or printed. Running servers keep serving.

Keys are never flags. By default they come from the environment:
  GATEHOUSE_SECRET_KEY      the new master key
  GATEHOUSE_SECRET_KEY_OLD  the current (old) master key; several, comma-separated
With --stdin, they are read from standard input instead: from a terminal
through two hidden prompts (old key, then new key), else as two lines, the
old key, then the new key.

Online procedure (see docs/security.md):
  1. restart every replica with GATEHOUSE_SECRET_KEY=<new> and
     GATEHOUSE_SECRET_KEY_OLD=<old>: they seal with the new key and open both;
  2. run this command with the same two variables;
  3. remove GATEHOUSE_SECRET_KEY_OLD and restart the replicas.
If any secret was sealed under a key that was not given, the command fails
and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			newKey, oldKeys := os.Getenv("GATEHOUSE_SECRET_KEY"), os.Getenv("GATEHOUSE_SECRET_KEY_OLD")
			if fromStdin {
				var err error
				if oldKeys, newKey, err = readKeys(cmd); err != nil {
					return err
				}
			}
			database := os.Getenv("GATEHOUSE_DATABASE")
			if database == "" {
				database = "sqlite:gatehouse.db"
			}
			return rotateMasterKey(cmd, database, newKey, oldKeys)
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "stdin", false, "read the old key, then the new key, one per line, from standard input")
	return cmd
}

// readKeys reads the two keys of --stdin: from a terminal through hidden
// prompts, since typed keys would otherwise stay on the screen and in its
// scrollback; else as two lines.
func readKeys(cmd *cobra.Command) (oldKey, newKey string, err error) {
	if f, ok := cmd.InOrStdin().(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return readKeyLines(cmd.InOrStdin())
	}
	sr := newSecretReader(cmd)
	if oldKey, err = sr.read("Old master key"); err != nil {
		return "", "", fmt.Errorf("secrets: %w", err)
	}
	if newKey, err = sr.read("New master key"); err != nil {
		return "", "", fmt.Errorf("secrets: %w", err)
	}
	return oldKey, newKey, nil
}

func readKeyLines(r io.Reader) (oldKey, newKey string, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, 4096))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("secrets: read keys: %w", err)
	}
	if len(lines) != 2 {
		return "", "", fmt.Errorf("secrets: --stdin wants two lines (old key, then new key), got %d", len(lines))
	}
	return lines[0], lines[1], nil
}

func rotateMasterKey(cmd *cobra.Command, database, newKey, oldKeys string) error {
	if newKey == "" || oldKeys == "" {
		return errors.New("secrets: the new key (GATEHOUSE_SECRET_KEY) and the old key (GATEHOUSE_SECRET_KEY_OLD) are both required")
	}
	cur, err := secrets.ParseMasterKey(newKey)
	if err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	olds, err := secrets.ParseMasterKeys(oldKeys)
	if err != nil {
		return fmt.Errorf("old key: %w", err)
	}
	kr, err := secrets.NewKeyring(cur, olds...)
	if err != nil {
		return err
	}
	// Opening a SQLite path creates the file: a mistyped path would leave
	// an empty database behind and a misleading "run migrations".
	if p, ok := strings.CutPrefix(database, "sqlite:"); ok {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("GATEHOUSE_DATABASE: no SQLite database to rotate: %w", err)
		}
	}
	ctx := cmd.Context()
	st, err := sqlstore.Open(ctx, database, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		return err
	}
	// A row that a running process rewrote while a pass ran is skipped by
	// the store's compare-and-swap and may still be sealed under an old
	// key (a replica not yet restarted with the new one, or a second
	// rotation): later passes re-wrap it or fail, so that success means
	// no secret the command saw is left under a key about to be dropped.
	total := 0
	for pass := 1; ; pass++ {
		stale := 0
		n, err := st.RewrapSecrets(ctx, func(aad, blob []byte) ([]byte, error) {
			// Opening first proves the payload intact, not just the wrap.
			pt, err := kr.Open(blob, aad)
			if err != nil {
				return nil, err
			}
			clear(pt)
			if kr.SealedByCurrent(blob) {
				return blob, nil
			}
			stale++
			return kr.Rewrap(blob, aad)
		})
		switch {
		case err != nil && pass > 1 && !errors.Is(err, secrets.ErrWrongKey):
			return fmt.Errorf("%w\n%d secrets were re-wrapped under the new key; run this again", err, total)
		case err != nil && pass > 1:
			return fmt.Errorf("%w\n%d secrets were re-wrapped under the new key, but some were rewritten meanwhile under a key that was not given: keep GATEHOUSE_SECRET_KEY_OLD, restart every replica with GATEHOUSE_SECRET_KEY=<new> and GATEHOUSE_SECRET_KEY_OLD=<old>, and run this again", err, total)
		case errors.Is(err, secrets.ErrWrongKey):
			return fmt.Errorf("%w\nnothing was changed: give every key the database's secrets are sealed under in GATEHOUSE_SECRET_KEY_OLD", err)
		case err != nil:
			return fmt.Errorf("%w\nnothing was changed", err)
		}
		total += n
		if n == stale {
			break
		}
		if pass == maxRotationPasses {
			return fmt.Errorf("secrets: %d secrets keep being rewritten under an old key while this runs (%d were re-wrapped): keep GATEHOUSE_SECRET_KEY_OLD, restart every replica with GATEHOUSE_SECRET_KEY=<new> and GATEHOUSE_SECRET_KEY_OLD=<old>, and run this again", stale-n, total)
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "re-wrapped %d secrets under master key %s\n", total, kr.KeyID())
	return nil
}

// maxRotationPasses bounds the passes against processes that keep sealing
// under an old key.
const maxRotationPasses = 3
