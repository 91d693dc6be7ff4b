"""Countries (as providers name them: "United States", "United Kingdom") to the regions allocation
groups them in. A country not listed here is its own region's "unknown", never guessed."""

NORTH_AMERICA, LATIN_AMERICA, EUROPE, ASIA_PACIFIC, MIDDLE_EAST_AFRICA = (
    "North America", "Latin America", "Europe", "Asia Pacific", "Middle East & Africa")
UNKNOWN = "unknown"

_REGIONS = {
    NORTH_AMERICA: ["United States", "Canada", "Bermuda"],
    LATIN_AMERICA: ["Mexico", "Brazil", "Argentina", "Chile", "Colombia", "Peru", "Uruguay", "Panama",
                    "Cayman Islands", "Puerto Rico"],
    EUROPE: ["United Kingdom", "Ireland", "Germany", "France", "Netherlands", "Belgium", "Luxembourg",
             "Switzerland", "Austria", "Italy", "Spain", "Portugal", "Sweden", "Norway", "Denmark", "Finland",
             "Iceland", "Poland", "Czech Republic", "Hungary", "Greece", "Jersey", "Guernsey", "Isle of Man",
             "Monaco", "Liechtenstein", "Cyprus", "Malta", "Romania", "Slovenia", "Estonia", "Latvia", "Lithuania",
             "Russia", "Turkey"],
    ASIA_PACIFIC: ["Japan", "China", "Hong Kong", "Taiwan", "South Korea", "Korea", "Singapore", "India",
                   "Australia", "New Zealand", "Indonesia", "Malaysia", "Thailand", "Philippines", "Vietnam",
                   "Macau", "Pakistan"],
    MIDDLE_EAST_AFRICA: ["Israel", "United Arab Emirates", "Saudi Arabia", "Qatar", "Kuwait", "South Africa",
                         "Egypt", "Nigeria", "Morocco", "Kenya"],
}
REGION_OF = {country.lower(): region for region, countries in _REGIONS.items() for country in countries}


def region_of(country: str) -> str:
    """The region of a country; `unknown` for an empty or unlisted one."""
    if not country or country == UNKNOWN:
        return UNKNOWN
    return REGION_OF.get(country.strip().lower(), UNKNOWN)
