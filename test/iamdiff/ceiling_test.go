package iamdiff

import "testing"

// TestAdjustmentCeilings: the differential test fails when more cases need a documented deviation
// than declared (runs without the oracle).
func TestAdjustmentCeilings(t *testing.T) {
	last := map[string]int{devVariablesOldVersion: 11, devRCPServices: 225, devPrefixVariables: 39, devArnUnresolvable: 8}
	if p := adjustmentProblems(last, 239); len(p) > 0 {
		t.Fatalf("the last run's counts exceed the ceilings: %v", p)
	}
	for name, c := range map[string]struct {
		explained map[string]int
		adjusted  int
	}{
		"one deviation over its ceiling": {map[string]int{devContextKeys: maxAdjustedByDeviation[devContextKeys] + 1}, 11},
		"an undeclared deviation":        {map[string]int{"D9 something new": 1}, 1},
		"too many adjusted cases":        {map[string]int{devRCPServices: 1}, maxAdjustedCases + 1},
	} {
		if p := adjustmentProblems(c.explained, c.adjusted); len(p) != 1 {
			t.Errorf("%s: problems %v, want one", name, p)
		}
	}
}
