"""The key-field rules as GX expectation specs: (expectation class name, keyword arguments).

Dirty input is not a failure: unreachable rows are quarantined by design. These rules check what
the pipeline promises about its own output, so a failure means the pipeline broke an invariant.
"""

MOBILE_PATTERN = r"^1[3-9][0-9]{9}$"
EMAIL_PATTERN = r"^[^@\s]+@[a-z0-9.-]+\.[a-z]{2,24}$"
LANDLINE_PATTERN = r"^0[1-9][0-9]{1,3}-[2-9][0-9]{6,7}(?:-[0-9]{1,6})?$"
WECHAT_PATTERN = r"^(?:[a-z][-_a-z0-9]{5,19}|1[3-9][0-9]{9})$"
QQ_PATTERN = r"^[1-9][0-9]{4,10}$"

STANDARDIZED_CONTACTS_SUITE = [
    ("ExpectColumnValuesToNotBeNull", {"column": "source_row"}),
    ("ExpectColumnValuesToBeBetween", {"column": "source_row", "min_value": 2}),
    ("ExpectColumnValuesToMatchRegex", {"column": "mobile", "regex": MOBILE_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": EMAIL_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "landline", "regex": LANDLINE_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "wechat", "regex": WECHAT_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "qq", "regex": QQ_PATTERN}),
    ("ExpectColumnValuesToBeInSet", {"column": "mobile_status", "value_set": ["valid", "repaired", "invalid", "empty"]}),
    ("ExpectColumnValuesToBeInSet", {"column": "email_status", "value_set": ["valid", "repaired", "invalid", "empty"]}),
    # a row the pipeline calls reachable really has a contact; an unreachable one has its reason
    ("ExpectColumnValuesToBeInSet", {"column": "reachable_has_contact", "value_set": [True]}),
    ("ExpectColumnValuesToBeInSet", {"column": "unreachable_has_reason", "value_set": [True]}),
]

CURATED_LEADS_SUITE = [
    ("ExpectColumnValuesToNotBeNull", {"column": "lead_id"}),
    ("ExpectColumnValuesToBeUnique", {"column": "lead_id"}),
    ("ExpectColumnValuesToMatchRegex", {"column": "lead_id", "regex": r"^L[0-9]{8}$"}),
    # every curated lead keeps at least one valid, reachable contact
    ("ExpectColumnValuesToBeInSet", {"column": "has_valid_contact", "value_set": [True]}),
    ("ExpectColumnValuesToMatchRegex", {"column": "mobile", "regex": MOBILE_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": EMAIL_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "wechat", "regex": WECHAT_PATTERN}),
    ("ExpectColumnValuesToMatchRegex", {"column": "qq", "regex": QQ_PATTERN}),
    # no two curated leads share a primary mobile: that would be one person twice, or a bad merge
    ("ExpectColumnValuesToBeUnique", {"column": "mobile"}),
    ("ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "last_seen", "column_B": "first_seen",
                                                 "or_equal": True}),
    ("ExpectColumnValuesToBeInSet", {"column": "landline_type", "value_set": ["", "landline", "switchboard"]}),
    ("ExpectColumnValuesToBeBetween", {"column": "record_count", "min_value": 1}),
    ("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": ["active"]}),
]
