package bench

import (
	"testing"

	"github.com/polynet-cni/polynet/test/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }
