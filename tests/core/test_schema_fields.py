"""The published OpenAPI schema names every field of the answers: one field instance listed under several names
(an amount) was bound to the last of them, and the schema named a single money field of a dozen."""

import pytest

pytestmark = pytest.mark.django_db


def properties(schema: dict, name: str) -> set[str]:
    return set(schema["components"]["schemas"][name]["properties"])


def test_the_schema_lists_every_amount_of_the_dashboard_positions_values_income_and_monitoring(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert properties(schema, "DashboardInitialData") >= {
        "total_value", "total_cost", "unrealized_gain", "unrealized_gain_percent", "day_change", "day_change_percent",
        "realized_gain", "dividends", "fees", "accounts"}
    assert properties(schema, "DashboardHolding") >= {
        "average_cost", "price", "market_value", "cost_basis", "unrealized_gain", "day_change", "weight"}
    assert properties(schema, "PortfolioValue") >= {"total_value", "total_cost", "unrealized_gain", "day_change"}
    assert properties(schema, "InstrumentPortfolioPosition") >= {
        "average_cost", "cost_basis", "market_value", "unrealized_gain"}
    assert properties(schema, "IncomeTotal") >= {"gross", "withheld", "net", "payments"}
    assert properties(schema, "CacheStats") >= {"namespaces", "redis"}


def test_the_schema_describes_the_answer_to_a_manual_price_write(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    created = schema["paths"]["/api/instruments/{symbol}/prices/"]["post"]["responses"]["201"]
    name = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert properties(schema, name) == {"symbol", "written"}
