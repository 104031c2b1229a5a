package secrets

import (
	"fmt"
	"strings"
)

// ParseMasterKeys decodes a comma-separated list of master keys (each as
// ParseMasterKey takes it), e.g. GATEHOUSE_SECRET_KEY_OLD. Errors name
// the position, never the key.
func ParseMasterKeys(list string) ([][]byte, error) {
	var keys [][]byte
	for i, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := ParseMasterKey(s)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
