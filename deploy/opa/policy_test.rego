# `opa test deploy/opa -v`: the example policy's decisions, one case each.
package bff_test

import data.bff

alice := {"sub": "alice", "groups": ["admins", "users"], "email": "alice@example.test"}

bob := {"sub": "bob", "groups": ["users"], "email": "bob@example.test"}

nobody := {"sub": "mallory", "groups": [], "email": "mallory@example.test"}

request(subject, resource, action, method, path) := {
	"subject": subject,
	"resource": resource,
	"action": action,
	"method": method,
	"path": path,
}

test_users_may_read_orders if {
	bff.allow with input as request(bob, "orders", "read", "GET", "/api/orders/42")
}

test_users_may_not_write_orders if {
	not bff.allow with input as request(bob, "orders", "write", "POST", "/api/orders")
}

test_users_may_not_delete_orders if {
	not bff.allow with input as request(bob, "orders", "delete", "DELETE", "/api/orders/42")
}

test_admins_may_write_and_delete_orders if {
	bff.allow with input as request(alice, "orders", "write", "PUT", "/api/orders/42")
	bff.allow with input as request(alice, "orders", "delete", "DELETE", "/api/orders/42")
}

test_only_admins_reach_the_admin_resource if {
	bff.allow with input as request(alice, "admin", "read", "GET", "/api/admin/users")
	not bff.allow with input as request(bob, "admin", "read", "GET", "/api/admin/users")
}

test_an_unknown_resource_is_denied_even_to_admins if {
	not bff.allow with input as request(alice, "reports", "read", "GET", "/api/reports")
}

test_an_unknown_action_is_denied if {
	not bff.allow with input as request(alice, "orders", "approve", "POST", "/api/orders/42")
}

test_a_subject_without_groups_is_denied if {
	not bff.allow with input as request(nobody, "orders", "read", "GET", "/api/orders")
}

test_group_names_are_case_sensitive if {
	not bff.allow with input as request({"sub": "eve", "groups": ["Admins"]}, "admin", "read", "GET", "/api/admin")
}

test_groups_given_as_a_string_are_denied if {
	not bff.allow with input as request({"sub": "eve", "groups": "admins"}, "admin", "read", "GET", "/api/admin")
}

test_a_missing_subject_is_denied if {
	not bff.allow with input as {"resource": "orders", "action": "read", "method": "GET", "path": "/api/orders"}
}

test_an_empty_input_is_denied if {
	not bff.allow with input as {}
}
