"""The one error the data layer raises."""


class DataError(ValueError):
    """Bad input data. The message names the file, the symbol, the row (date) and the rule broken."""

    def __init__(self, rule: str, *, source: str = "?", symbol: str | None = None, row=None,
                 detail: str = ""):
        self.rule, self.source, self.symbol, self.row, self.detail = rule, source, symbol, row, detail
        where = [f"file {source}"]
        if symbol is not None:
            where.append(f"symbol {symbol}")
        if row is not None:
            where.append(f"row {row}")
        msg = f"{', '.join(where)}: rule '{rule}' broken"
        super().__init__(msg + (f": {detail}" if detail else ""))
