from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.factories import UserFactory

CORE_PLUS = {
    "customer_email": "Prospect@Example.test",
    "name": "Pru Prospect",
    "phone": "+61 2 9999 0000",
    "company_name": "Prospect Pty Ltd",
    "business_type": "small_business",
    "current_it_support": ["another_msp"],
    "tech_comfort_level": 3,
    "pain_point": "security",
    "timeline": "immediately",
}
PREMIUM = {
    "customer_email": "cfo@bigco.test",
    "name": "Bea Big",
    "company_name": "BigCo",
    "website": "bigco.test",
    "ein": "12-3456789",
    "industry": "Logistics",
    "employee_count": 80,
    "locations": 3,
    "years_in_business": 3,
    "it_infrastructure": ["servers", "wifi", "cloud"],
    "security_posture": 3,
    "compliance_needs": [],
    "budget_range": "1000_2499",
    "decision_maker": False,
    "timeline": "immediately",
}
ENTERPRISE = {
    "customer_email": "cio@megacorp.test",
    "name": "Max Mega",
    "company_name": "MegaCorp",
    "current_it_setup": "Two data centres, 900 endpoints",
    "project_scope": "Full managed service with 24x7 NOC",
    "timeline": "Q3",
    "budget_notes": "Approved for next FY",
}


@pytest.fixture
def sales_reps(db):
    group = Group.objects.get(name="Sales")
    reps = [UserFactory(email=f"rep{n}@keel.test", is_staff=True) for n in (1, 2)]
    for rep in reps:
        rep.groups.add(group)
    return reps
