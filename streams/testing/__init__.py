"""Dev tooling: the embedded Kafka-protocol broker (`broker`), a worker driven from outside
(`harness`) and the gateway as a child process (`gateway_process`). Used by the tests, the
benchmarks and the demo; the product (worker, gateway, replay) never imports it."""
