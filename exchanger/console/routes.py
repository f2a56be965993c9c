"""Routes: the routing table and catalogue, explain a document, and edit routes.yaml with a preview before applying."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from exchanger.console.audit import operator
from exchanger.console.auth import requires

bp = Blueprint("routes", __name__, url_prefix="/routes")


@bp.get("")
def table():
    """The routing rules and the message catalogue the daemon runs now, as tables."""
    config = current_app.config["SERVICES"].config
    return render_template("routes.html", config=config, types=[config.catalogue.get(n) for n in config.catalogue.names()])


@bp.route("/explain", methods=["GET", "POST"])
def explain():
    """What the daemon would do with a pasted or uploaded document: its refusal, or the rules and deliveries."""
    from exchanger.operations.routes import explain as explain_document

    if request.method == "GET":
        return render_template("explain.html", result=None)
    upload = request.files.get("document")
    body = upload.read() if upload and upload.filename else request.form.get("text", "").encode()
    if not body.strip():
        return render_template("explain.html", result=None,
                               error="Paste a document or choose a file to explain: both were empty."), 400
    config = current_app.config["SERVICES"].config
    try:
        result = explain_document(config, body)
    except Exception as exc:  # noqa: BLE001  (any document, however broken, gets an answer in the page)
        return render_template("explain.html", result=None, error=f"The document cannot be explained: {exc}"), 400
    return render_template("explain.html", result=result, config=config, text=body.decode("utf-8", "replace"))


@bp.route("/edit", methods=["GET", "POST"])
@requires("operator")
def edit():
    """Edit routes.yaml: preview shows the routing diff and every problem; apply writes it and reloads the daemon."""
    from exchanger.operations import routes as operations

    services = current_app.config["SERVICES"]
    path = services.config_path
    if request.method == "GET":
        current = operations.current_text(path)
        return render_template("route_edit.html", text=current, base=current, preview=None)
    # Browsers send a textarea with CRLF line ends; the file keeps the LF ones it has.
    text = request.form.get("text", "").replace("\r\n", "\n")
    base = request.form.get("base", "").replace("\r\n", "\n")
    preview = operations.preview(path, text)
    if request.form.get("action") != "apply":
        return render_template("route_edit.html", text=text, base=base, preview=preview), 200 if preview.ok else 422
    try:
        applied = operations.apply(path, text, operator(g.user.name), services.store(), services.reload,
                                   base_text=base or None)
    except operations.ConfigRejected as exc:
        refused = operations.RoutePreview(problems=list(exc.problems), diff=preview.diff if preview.ok else None)
        return render_template("route_edit.html", text=text, base=base, preview=refused, refused=True), 422
    kept = f" The previous version is kept in {applied.previous}." if applied.previous else ""
    if applied.reload_problem:
        flash(f"The new routes are written, but the daemon could not be asked to reload: {applied.reload_problem}.{kept}",
              "warning")
    else:
        flash(f"The new routes are applied and the daemon reloads them.{kept}", "info")
    return redirect(url_for("routes.table"))
