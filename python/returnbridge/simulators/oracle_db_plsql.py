"""The EBS stand-in's PL/SQL: the connector's anonymous blocks (PROCESS_ORDER, CREATE_REQUEST) and its SELECTs."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from returnbridge.simulators.oracle import (
    CUSTOMERS,
    ITEMS,
    ORGANIZATIONS,
    SUBINVENTORIES,
    UOMS,
)
from returnbridge.simulators.oracle_db_errors import (
    DatabaseError,
    Var,
    _raise,
)
from returnbridge.simulators.oracle_db_state import (
    _ACTION_FIELDS,
    _ATTR_FIELDS,
    _CM_LINE_FIELDS,
    _CM_PARAMS,
    _HEADER_FIELDS,
    _LINE_FIELDS,
    _LOT_SERIAL_FIELDS,
    CM_TABLE,
    LINE_TYPES,
    OPERATING_UNITS,
    ORDER_TYPES,
    ORDERS_TABLE,
    EbsDatabase,
)


class Session(Protocol):
    """What a PL/SQL block sees of its connection: the database, the policy context, the open transaction."""

    database: EbsDatabase
    policy_org: Decimal | None
    _pending: list[Callable[[], None]]


def _strip_strings(sql: str) -> str:
    """SQL text with string literals and comments blanked, so ':x' inside them is not a placeholder."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


# -- PL/SQL blocks -------------------------------------------------------------------------------------

_ASSIGN_IN = re.compile(
    r"(?im)^\s*(l_header_rec|l_attr_rec|l_(?:line|lot_serial|action_request|cm_line)_tbl\((\d+)\))\.(\w+)\s*:=\s*(.+?)\s*;\s*$"
)
_NAMED_BIND = re.compile(r"(?i)\b(\w+)\s*=>\s*:(\w+)")
_ASSIGN_OUT = re.compile(r"(?im)^\s*:(\w+)\s*:=\s*([\w.]+)\s*;\s*$")
_CONSTANTS = {"oe_globals.g_opr_create": "CREATE", "fnd_api.g_true": "T", "fnd_api.g_false": "F"}


def _run_block(conn: Session, sql: str, binds: dict[str, Any]) -> None:
    policy = re.search(r"(?i)MO_GLOBAL\.SET_POLICY_CONTEXT\s*\(\s*'S'\s*,\s*:(\w+)\s*\)", sql)
    conn.policy_org = _num(binds.get(policy.group(1).lower())) if policy else None
    records: dict[str, Any] = {
        "header": {},
        "attr": {},
        "line": {},
        "lot_serial": {},
        "action_request": {},
        "cm_line": {},
    }
    for target, index, field_name, expr in _ASSIGN_IN.findall(_strip_comments(sql)):
        expr_l = expr.strip().lower()
        if expr_l.startswith(":"):
            value = binds[expr_l[1:]]
        elif expr_l in _CONSTANTS:
            value = _CONSTANTS[expr_l]
        elif re.fullmatch(r"oe_order_pub\.g_miss_\w+", expr_l):
            continue
        else:
            # Literal values in the block text would be string-built SQL: refuse like a compile error would.
            _raise(DatabaseError, "ORA-06550", f"line 1: literal {expr!r} not allowed; use a bind variable")
        kind = target.lower().split("(")[0].removeprefix("l_").removesuffix("_tbl").removesuffix("_rec")
        if index:
            records[kind].setdefault(int(index), {})[field_name.lower()] = value
        else:
            records[kind][field_name.lower()] = value
    args = {
        name.lower(): binds[bind.lower()] for name, bind in _NAMED_BIND.findall(sql) if bind.lower() in binds
    }
    if re.search(r"(?i)\bOE_ORDER_PUB\.PROCESS_ORDER\s*\(", sql):
        outputs = _process_order(conn, records, args)
    elif re.search(r"(?i)\bAR_CREDIT_MEMO_API_PUB\.CREATE_REQUEST\s*\(", sql):
        outputs = _create_cm_request(conn, records, args)
    else:
        _raise(DatabaseError, "ORA-06550", "PLS-00201: identifier must be declared")
        return
    for name, bind in _NAMED_BIND.findall(sql):
        if name.lower().startswith("x_") and isinstance(binds.get(bind.lower()), Var):
            binds[bind.lower()].setvalue(0, outputs.get(name.lower()))
    for bind, expr in _ASSIGN_OUT.findall(sql):
        if isinstance(binds.get(bind.lower()), Var):
            binds[bind.lower()].setvalue(0, outputs.get(expr.lower()))


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"/\*.*?\*/", "", sql, flags=re.S)


# Oracle NUMBER holds magnitudes below 1E126; a bigger value assigned to a NUMBER field overflows.
_NUMBER_LIMIT = Decimal("1E126")


def _num(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # bound as a PL/SQL BOOLEAN, which no NUMBER field takes
        _raise(DatabaseError, "ORA-06550", "PLS-00382: expression is of wrong type")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():  # NUMBER has no NaN or infinity; TO_NUMBER('NaN') fails the same way
        _raise(
            DatabaseError,
            "ORA-06502",
            f"PL/SQL: numeric or value error: character to number conversion error ({value!r})"[:300],
        )
    if abs(number) >= _NUMBER_LIMIT:
        _raise(DatabaseError, "ORA-01426", "numeric overflow")
    return number


def _typed(record: dict[str, Any], spec: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a record against its PL/SQL type: known fields, numbers, VARCHAR2 lengths."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        kind = spec.get(name)
        if kind is None:
            _raise(
                DatabaseError,
                "ORA-06550",
                f"PLS-00302: component '{name.upper()}' must be declared ({where})",
            )
        if kind == "n":
            out[name] = _num(value)
        elif value is not None:
            text = str(value)
            if len(text) > kind:
                # Assigning an over-long value to a VARCHAR2 field raises before the API runs.
                _raise(
                    DatabaseError,
                    "ORA-06502",
                    f"PL/SQL: numeric or value error: character string buffer too small ({where}.{name})",
                )
            out[name] = text
        else:
            out[name] = None
    return out


def _process_order(conn: Session, records: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    db = conn.database
    messages: list[str] = []
    header = _typed(records["header"], _HEADER_FIELDS, "l_header_rec")
    lines = {i: _typed(r, _LINE_FIELDS, f"l_line_tbl({i})") for i, r in sorted(records["line"].items())}
    lots = {
        i: _typed(r, _LOT_SERIAL_FIELDS, f"l_lot_serial_tbl({i})")
        for i, r in sorted(records["lot_serial"].items())
    }
    actions = {
        i: _typed(r, _ACTION_FIELDS, f"l_action_request_tbl({i})")
        for i, r in sorted(records["action_request"].items())
    }
    if db.unexpected_errors > 0:
        with db.lock:
            db.unexpected_errors -= 1
        return _outputs("U", ["ORA-20001: OE_ORDER_PVT unexpected error: record locked by another session"])
    org_id = conn.policy_org
    if org_id is None or int(org_id) not in OPERATING_UNITS:
        return _outputs(
            "E",
            [
                "MO: Operating unit is not set or is not valid for this responsibility (call MO_GLOBAL.SET_POLICY_CONTEXT)."
            ],
        )
    if header.get("org_id") is not None and header["org_id"] != org_id:
        messages.append(f"The order's org_id {header['org_id']} differs from the policy context {org_id}.")
    if header.get("operation") != "CREATE":
        messages.append("Header operation must be CREATE.")
    if header.get("order_type_id") is None or int(header["order_type_id"]) not in ORDER_TYPES:
        messages.append(f"Order type {header.get('order_type_id')} is not valid.")
    customer = next(
        (
            n
            for n, c in CUSTOMERS.items()
            if header.get("sold_to_org_id") is not None
            and c["ebs_account_id"] == int(header["sold_to_org_id"])
        ),
        None,
    )
    if customer is None:
        messages.append(f"Customer (sold_to_org_id) {header.get('sold_to_org_id')} is not valid.")
    ref = header.get("orig_sys_document_ref")
    if ref:
        with db.lock:
            if any(o["ORIG_SYS_DOCUMENT_REF"] == ref for o in db.state.documents[ORDERS_TABLE].values()):
                messages.append(
                    f"An order with orig_sys_document_ref {ref} already exists (OE_ORIG_SYS_DOC_REF_EXISTS)."
                )
    if not lines:
        messages.append("The order has no lines.")
    parsed_lines: list[dict[str, Any]] = []
    for i, line in lines.items():
        where = f"Line {i}"
        if line.get("line_category_code") != "RETURN":
            messages.append(f"{where}: line_category_code must be RETURN.")
        line_type = int(line["line_type_id"]) if line.get("line_type_id") is not None else None
        if line_type not in LINE_TYPES:
            messages.append(f"{where}: line type {line_type} is not valid.")
        item = None
        if line.get("inventory_item_id") is not None:
            item = next(
                (it for it in ITEMS.values() if it.ebs_item_id == int(line["inventory_item_id"])), None
            )
        elif line.get("ordered_item"):
            item = ITEMS.get(line["ordered_item"])
        if item is None:
            messages.append(
                f"{where}: item {line.get('inventory_item_id') or line.get('ordered_item')} is not valid."
            )
        elif not item.returnable:
            messages.append(f"{where}: item {item.number} is not returnable.")
        qty = line.get("ordered_quantity")
        if qty is None or qty <= 0:
            messages.append(f"{where}: ordered_quantity must be greater than zero.")
        if line.get("order_quantity_uom") not in UOMS:
            messages.append(f"{where}: unit of measure {line.get('order_quantity_uom')} is not valid.")
        org = next(
            (
                o
                for o in ORGANIZATIONS.values()
                if line.get("ship_from_org_id") is not None and o.ebs_id == int(line["ship_from_org_id"])
            ),
            None,
        )
        if line_type == 1437 and org is None:
            messages.append(
                f"{where}: a receipt return line needs a valid receiving organization (ship_from_org_id)."
            )
        if line.get("subinventory") and line["subinventory"] not in SUBINVENTORIES:
            messages.append(f"{where}: subinventory {line['subinventory']} is not valid.")
        if line.get("return_context") == "ORDER" and not (
            line.get("return_attribute1") and line.get("return_attribute2")
        ):
            messages.append(
                f"{where}: a referenced return needs return_attribute1 (header_id) and return_attribute2 (line_id)."
            )
        parsed_lines.append({**line, "_item": item, "_org": org})
    serial_counts: dict[int, Decimal] = {}
    for i, lot in lots.items():
        index = int(lot["line_index"]) if lot.get("line_index") is not None else 0
        if index not in lines:
            messages.append(f"Lot/serial {i}: line_index {index} does not point at a line.")
            continue
        if lot.get("from_serial_number"):
            serial_counts[index] = serial_counts.get(index, Decimal(0)) + (lot.get("quantity") or Decimal(1))
    for index, count in serial_counts.items():
        if lines[index].get("ordered_quantity") is not None and count != lines[index]["ordered_quantity"]:
            messages.append(
                f"Line {index}: {count} serial numbers for quantity {lines[index]['ordered_quantity']}."
            )
    if messages:
        return _outputs("E", messages)
    header_id = 94000 + db.next_id()
    now = db.now()
    booked = any(a.get("request_type") == "BOOK_ORDER" for a in actions.values())
    order = {
        "HEADER_ID": header_id,
        "ORDER_NUMBER": str(68000 + header_id - 94000),
        "ORG_ID": int(org_id),
        "ORIG_SYS_DOCUMENT_REF": ref,
        "FLOW_STATUS_CODE": "BOOKED" if booked else "ENTERED",
        "SOLD_TO_ORG_ID": int(header["sold_to_org_id"]),
        "TRANSACTIONAL_CURR_CODE": header.get("transactional_curr_code") or "USD",
        "CUST_PO_NUMBER": header.get("cust_po_number"),
        "RETURN_REASON_CODE": header.get("return_reason_code"),
        "CREATION_DATE": now,
        "LAST_UPDATE_DATE": now,
        "LINES": [
            {
                "LINE_ID": header_id * 10 + n,
                "LINE_NUMBER": n,
                "INVENTORY_ITEM_ID": ln["_item"].ebs_item_id,
                "ORDERED_ITEM": ln["_item"].number,
                "ORDERED_QUANTITY": ln["ordered_quantity"],
                "ORDER_QUANTITY_UOM": ln["order_quantity_uom"],
                "UNIT_SELLING_PRICE": ln.get("unit_selling_price"),
                "SHIP_FROM_ORG_ID": ln["_org"].ebs_id if ln["_org"] else None,
                "SUBINVENTORY": ln.get("subinventory"),
                "RETURN_REASON_CODE": ln.get("return_reason_code"),
                "LINE_CATEGORY_CODE": "RETURN",
                "FLOW_STATUS_CODE": "AWAITING_RETURN" if booked else "ENTERED",
                "SERIALS": [lot for lot in lots.values() if lot.get("line_index") == n],
                "CONTEXT": ln.get("context"),
                **{f"ATTRIBUTE{k}": ln.get(f"attribute{k}") for k in range(1, 16)},
            }
            for n, ln in enumerate(parsed_lines, start=1)
        ],
    }

    def apply() -> None:
        db.state.put_document(ORDERS_TABLE, str(header_id), order)

    conn._pending.append(apply)
    return _outputs(
        "S",
        [],
        {
            "x_header_rec.header_id": header_id,
            "x_header_rec.order_number": order["ORDER_NUMBER"],
            "x_header_rec.flow_status_code": order["FLOW_STATUS_CODE"],
        },
    )


def _create_cm_request(conn: Session, records: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    db = conn.database
    messages: list[str] = []
    params = _typed({k: v for k, v in args.items() if k.startswith("p_")}, _CM_PARAMS, "CREATE_REQUEST")
    cm_lines = {
        i: _typed(r, _CM_LINE_FIELDS, f"l_cm_line_tbl({i})") for i, r in sorted(records["cm_line"].items())
    }
    attrs = _typed(records["attr"], _ATTR_FIELDS, "l_attr_rec")
    if db.unexpected_errors > 0:
        with db.lock:
            db.unexpected_errors -= 1
        return _outputs("U", ["ORA-20001: AR_CREDIT_MEMO_API_PUB unexpected error"])
    org_id = conn.policy_org
    if org_id is None or int(org_id) not in OPERATING_UNITS:
        return _outputs("E", ["MO: Operating unit is not set (call MO_GLOBAL.SET_POLICY_CONTEXT)."])
    trx_id = params.get("p_customer_trx_id")
    invoice = db.invoices.get(int(trx_id)) if trx_id is not None else None
    if invoice is None:
        return _outputs("E", [f"AR_TAPI_TRANS_NOT_EXIST: Transaction {trx_id} does not exist."])
    if not params.get("p_cm_reason_code"):
        messages.append("AR_RAXTRX_INV_CM_REASON: p_cm_reason_code is required.")
    if invoice.org_id != int(org_id):
        messages.append(f"Transaction {trx_id} does not belong to operating unit {org_id}.")
    flag = params.get("p_line_credit_flag")
    if flag not in ("Y", "N", "L"):
        messages.append(f"AR_CMREQ_INVALID_LINE_CREDIT_FLAG: p_line_credit_flag {flag} is not valid.")
    ref = attrs.get("attribute15")
    if ref:
        with db.lock:
            if any(r.get("ATTRIBUTE15") == ref for r in db.state.documents[CM_TABLE].values()):
                messages.append(f"A credit memo request with reference {ref} already exists.")
    total = Decimal(0)
    credits: dict[int, Decimal] = {}
    if flag in ("Y", "L"):
        if not cm_lines:
            messages.append("AR_CMREQ_NO_LINES: a line-level credit needs cm_line_tbl lines.")
        for i, line in cm_lines.items():
            line_id = (
                int(line["customer_trx_line_id"]) if line.get("customer_trx_line_id") is not None else None
            )
            if line_id not in invoice.lines:
                messages.append(
                    f"Line {i}: customer_trx_line_id {line_id} is not a line of transaction {trx_id}."
                )
                continue
            _, invoiced, unit = invoice.lines[line_id]
            qty = line.get("quantity_credited")
            amount = line.get("extended_amount")
            price = line.get("price") if line.get("price") is not None else unit
            if qty is None or qty >= 0:
                messages.append(f"Line {i}: quantity_credited must be negative.")
                continue
            if amount is None:
                amount = qty * price
            if amount >= 0:
                messages.append(f"Line {i}: extended_amount must be negative.")
                continue
            if amount != (qty * price).quantize(amount):
                messages.append(
                    f"Line {i}: extended_amount {amount} is not quantity_credited x price ({qty * price})."
                )
            already = invoice.credited.get(line_id, Decimal(0)) + credits.get(line_id, Decimal(0))
            if already - qty > invoiced:
                messages.append(
                    f"Line {i}: crediting {-qty} would exceed the invoiced quantity {invoiced} (already credited {already})."
                )
            credits[line_id] = credits.get(line_id, Decimal(0)) - qty
            total += amount
    else:
        for name in ("p_line_amount", "p_tax_amount", "p_freight_amount"):
            value = params.get(name)
            if value is not None and value > 0:
                messages.append(f"{name} must be negative or zero.")
            total += value or Decimal(0)
        if total >= 0:
            messages.append("AR_CMREQ_NO_AMOUNT: nothing to credit.")
    if messages:
        return _outputs("E", messages)
    request_id = 5500 + db.next_id()
    now = db.now()
    complete = params.get("p_skip_workflow_flag") == "Y"
    cm_trx_id = 20000 + request_id if complete else None
    cm_number = f"CM-{cm_trx_id}" if complete else None
    request = {
        "REQUEST_ID": request_id,
        "CUSTOMER_TRX_ID": invoice.customer_trx_id,
        "CM_CUSTOMER_TRX_ID": cm_trx_id,
        "CM_TRX_NUMBER": cm_number,
        "STATUS": "COMPLETE" if complete else "PENDING_APPROVAL",
        "TOTAL_AMOUNT": total,
        "CURRENCY_CODE": invoice.currency,
        "ORG_ID": int(org_id),
        "REASON": params.get("p_cm_reason_code"),
        "COMMENTS": params.get("p_comments"),
        "ATTRIBUTE15": ref,
        "CREATION_DATE": now,
        "LAST_UPDATE_DATE": now,
        "LINES": [{**ln} for ln in cm_lines.values()],
    }

    def apply() -> None:
        for line_id, qty in credits.items():
            invoice.credited[line_id] = invoice.credited.get(line_id, Decimal(0)) + qty
        if complete:
            db.state.post(
                CM_TABLE,
                str(request_id),
                invoice.currency,
                [("4100", -total, Decimal(0)), ("1200", Decimal(0), -total)],
            )
        db.state.put_document(CM_TABLE, str(request_id), request)

    conn._pending.append(apply)
    return _outputs("S", [], {"x_request_id": request_id})


def _outputs(status: str, messages: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "x_return_status": status,
        "x_msg_count": len(messages),
        "x_msg_data": messages[0] if len(messages) == 1 else None,
        "l_messages": "\n".join(messages) or None,
        **(extra or {}),
    }


# -- SELECTs -------------------------------------------------------------------------------------------


def _select_columns(sql: str) -> list[str]:
    match = re.match(r"(?is)^select\s+(.*?)\s+from\s", sql)
    if match is None:
        _raise(DatabaseError, "ORA-00923", "FROM keyword not found where expected")
        raise AssertionError
    columns, depth, buf = [], 0, ""
    for ch in match.group(1):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            columns.append(buf)
            buf = ""
        else:
            buf += ch
    columns.append(buf)
    names = []
    for col in columns:
        alias = re.search(r"(?i)\bas\s+(\w+)\s*$", col.strip())
        names.append((alias.group(1) if alias else col.strip().split(".")[-1]).lower())
    return names


def _run_select(db: EbsDatabase, sql: str, binds: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = _select_columns(sql)
    table = re.search(r"(?is)\bfrom\s+(\w+)", sql)
    name = table.group(1).upper() if table else ""
    with db.lock:
        if name == ORDERS_TABLE:
            rows = [_order_row(o) for o in db.state.documents[ORDERS_TABLE].values()]
            id_col = "header_id"
        elif name == CM_TABLE:
            rows = [_cm_row(r) for r in db.state.documents[CM_TABLE].values()]
            id_col = "request_id"
        elif name == "OE_ORDER_LINES_ALL":
            rows = [
                {"header_id": o["HEADER_ID"], **{k.lower(): v for k, v in line.items() if k != "SERIALS"}}
                for o in db.state.documents[ORDERS_TABLE].values()
                for line in o["LINES"]
            ]
            id_col = "header_id"
        elif name == "RA_CM_REQUEST_LINES_ALL":
            rows = [
                {
                    "request_id": r["REQUEST_ID"],
                    "customer_trx_line_id": line.get("customer_trx_line_id"),
                    "quantity": line.get("quantity_credited"),
                    "price": line.get("price"),
                    "extended_amount": line.get("extended_amount"),
                }
                for r in db.state.documents[CM_TABLE].values()
                for line in r["LINES"]
            ]
            id_col = "request_id"
        elif name == "MTL_ONHAND_QUANTITIES_DETAIL":
            rows = _onhand_rows(db)
            id_col = ""
        else:
            _raise(DatabaseError, "ORA-00942", "table or view does not exist")
            raise AssertionError
    where = _strip_strings(sql.split("ORDER BY")[0].split("order by")[0])
    if "ref" in binds:
        column = "orig_sys_document_ref" if name == ORDERS_TABLE else "attribute15"
        rows = [r for r in rows if r.get(column) == binds["ref"]]
    if "id" in binds:
        rows = [r for r in rows if str(r.get(id_col)) == str(binds["id"])]
    if "since" in binds and binds["since"] is not None:
        since = binds["since"]
        op = ">=" if re.search(r"last_update_date\)?\s*>=\s*:since", where, re.I) else ">"
        rows = [
            r
            for r in rows
            if (r["last_update_date"] >= since if op == ">=" else r["last_update_date"] > since)
        ]
    if re.search(r"(?i)order\s+by\s+.*last_update_date", sql):
        rows.sort(key=lambda r: (r["last_update_date"], tuple(str(r.get(c)) for c in columns)))
    skip = int(binds.get("skip") or 0)
    limit = binds.get("limit")
    rows = rows[skip : skip + int(limit)] if limit is not None else rows[skip:]
    unknown = [c for c in columns if rows and c not in rows[0]]
    if unknown:
        _raise(DatabaseError, "ORA-00904", f'"{unknown[0].upper()}": invalid identifier')
    return columns, [tuple(r.get(c) for c in columns) for r in rows]


def _order_row(o: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in o.items() if k != "LINES"}


def _cm_row(r: dict[str, Any]) -> dict[str, Any]:
    row = {k.lower(): v for k, v in r.items() if k != "LINES"}
    row["trx_number"] = r.get("CM_TRX_NUMBER")
    row["invoice_currency_code"] = r.get("CURRENCY_CODE")
    return row


def _onhand_rows(db: EbsDatabase) -> list[dict[str, Any]]:
    rows = []
    for (sku, org_code, sub), qty in sorted(db.state.stock.items()):
        item = ITEMS.get(sku)
        org = ORGANIZATIONS.get(org_code)
        if item is None or org is None:
            continue
        stamp = db.simulator.stock_updated.get((sku, org_code, sub))
        rows.append(
            {
                "inventory_item_id": item.ebs_item_id,
                "item_number": sku,
                "organization_id": org.ebs_id,
                "organization_code": org_code,
                "subinventory_code": sub,
                "lot_number": None,
                "primary_uom_code": item.uom,
                "primary_transaction_quantity": qty,
                "last_update_date": datetime.fromisoformat(stamp)
                if stamp
                else datetime(2000, 1, 1, tzinfo=UTC),
            }
        )
    return rows
