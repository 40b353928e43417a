"""The browser UI: routes parse, call one service, render."""
