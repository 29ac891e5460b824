package limit

import "testing"

func TestFailures(t *testing.T) {
	f := NewFailures(3)
	for i := range 3 {
		if _, ok := f.Allow("1.2.3.4"); !ok {
			t.Fatalf("refused after %d failures, budget 3", i)
		}
		f.Failed("1.2.3.4")
	}
	wait, ok := f.Allow("1.2.3.4")
	if ok || wait <= 0 {
		t.Fatalf("allowed after spending the budget (wait %v)", wait)
	}
	if _, ok := f.Allow("5.6.7.8"); !ok {
		t.Fatal("another key was limited")
	}
	var off *Failures
	off.Failed("x")
	if _, ok := off.Allow("x"); !ok {
		t.Fatal("a nil limiter limits")
	}
	if _, ok := NewFailures(0).Allow("x"); !ok {
		t.Fatal("a zero budget limits")
	}
}
