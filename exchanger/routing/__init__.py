"""The declarative routing table: who may send what to whom."""

from exchanger.routing.rules import Approval, Delivery, Route, Selector
from exchanger.routing.table import RouteDecision, RoutingTable

__all__ = ["Approval", "Delivery", "Route", "RouteDecision", "RoutingTable", "Selector"]
