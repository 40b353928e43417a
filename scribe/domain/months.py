"""Month and weekday names, once, for every rule that reads or writes a date."""

from __future__ import annotations

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# the shortened forms a note writes: "Mar 4", "sept.", "Dec"
SHORT_MONTHS = ("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")

MONTH_WORDS = frozenset(MONTHS) | frozenset(SHORT_MONTHS)
MONTHS_AND_DAYS = frozenset(MONTHS) | frozenset(WEEKDAYS)

# a month, written out or shortened: "march", "Mar", "sept" (not "marrow", "decrease"); use with \b after it
MONTH_PATTERN = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
                 r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
FULL_MONTH_PATTERN = "(?:" + "|".join(MONTHS) + ")"
