"""The exchange's side of RabbitMQ: names, topology, broker users, URLs and a blocking participant client."""
