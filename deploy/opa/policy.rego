# Example policy for bff-gateway's PDP call (SPEC section 4).
#
# The gateway asks PDP_URL=http://opa:8181/v1/data/bff/allow with
#
#   {"input": {"subject": {"sub", "groups", "email"},
#              "resource": <route name from ROUTES_FILE>,
#              "action": "read" | "write" | "delete",
#              "method": <HTTP method>, "path": <normalised path>}}
#
# and allows only on {"result": true}. Anything this policy does not grant is
# denied: an unknown resource, an unknown action, a subject without groups,
# a malformed input.
package bff

default allow := false

# Which groups may perform which action on which resource. Resource names are
# route names (ROUTES_FILE); actions are the gateway's: GET, HEAD and OPTIONS
# read, DELETE deletes, every other method writes. Group names are compared
# exactly (case-sensitive), as the IdP sends them in the `groups` claim.
grants := {
	"orders": {
		"read": {"users", "admins"},
		"write": {"admins"},
		"delete": {"admins"},
	},
	"admin": {
		"read": {"admins"},
		"write": {"admins"},
		"delete": {"admins"},
	},
}

allow if {
	is_array(input.subject.groups)
	some group in input.subject.groups
	group in grants[input.resource][input.action]
}
