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

func TestAddressKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2::a", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::a", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
	}
	for _, tt := range tests {
		if got := AddressKey(tt.in); got != tt.want {
			t.Errorf("AddressKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
