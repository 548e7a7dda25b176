# Keyring gateway benchmark (Keyring.Gateway; crate keyring_gateway):
#
#   1. GET /v1/status through the gateway (HTTP parsed in Rust, handed to
#      the BEAM as a message, answered by a process per request), with 1 and
#      64 keep-alive connections: requests/s, p50, p99; against
#        - the same operation called from Elixir (no HTTP, no JSON),
#        - GET / served by the gateway alone (Rust, no BEAM hop),
#        - OTP :inets httpd + mod_esi (nodelay) answering the same JSON,
#          the server the anchors measured as the no-hex alternative.
#   2. An RPC call to an exposed handle on another keyring member over
#      QUIC, through POST /v1/rpc/{peer}/{handle} (1 and 64 connections),
#      against Keyring.call/4 from Elixir (1 and 64 callers).
#   3. SSE fan-out to 1,000 clients: events/s delivered and delivery p99
#      (publish to the moment a client has read the event).
#
#   mix run --no-start bench/gateway.exs            (about 2 minutes)
#
# Clients are Erlang processes on the same machine (gen_tcp, the socket's
# built-in HTTP header parser), so client and server share the cores: the
# numbers compare contenders under the same load, not absolute capacity.
# Each contender runs 3 rounds of 3 s; medians are printed. SSE latency is
# sampled in 1 client of 20 (the others only wait for the last event).

Application.put_env(:keyring, :autostart, false)
{:ok, _} = Application.ensure_all_started(:keyring)
{:ok, _} = Application.ensure_all_started(:inets)
Logger.configure(level: :warning)

defmodule :gw_bench_esi do
  # mod_esi callback: the same status JSON the gateway answers.
  def status(session, _env, _input) do
    {:ok, %{"node" => _} = status} =
      with {:ok, 200, s} <- Keyring.Gateway.Operations.run("status", %{}, GatewayBench.ctx()),
           do: {:ok, s}

    :mod_esi.deliver(session, [
      ~c"Content-Type: application/json\r\n\r\n",
      Keyring.Gateway.JSON.encode!(status)
    ])
  end
end

defmodule GatewayBench do
  @rounds 3
  @seconds 3

  def ctx do
    %{
      instance: BenchGw,
      authorized: true,
      url: Keyring.Gateway.url(instance: BenchGw),
      stats: fn -> Keyring.Gateway.stats(instance: BenchGw) end
    }
  end

  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))

  def pct(sorted, p) when sorted != [],
    do: Enum.at(sorted, min(length(sorted) - 1, trunc(p * length(sorted))))

  # --- a keep-alive HTTP/1.1 client -----------------------------------------

  def connect(port) do
    {:ok, s} =
      :gen_tcp.connect(~c"127.0.0.1", port, [
        :binary,
        active: false,
        nodelay: true,
        packet: :http_bin
      ])

    s
  end

  def request(s, req) do
    :ok = :gen_tcp.send(s, req)
    {:ok, {:http_response, _, status, _}} = :gen_tcp.recv(s, 0, 30_000)

    case headers(s, 0) do
      :chunked ->
        chunks(s)

      len ->
        :ok = :inet.setopts(s, packet: :raw)
        {:ok, _body} = if len > 0, do: :gen_tcp.recv(s, len, 30_000), else: {:ok, ""}
    end

    :ok = :inet.setopts(s, packet: :http_bin)
    status
  end

  defp headers(s, len) do
    case :gen_tcp.recv(s, 0, 30_000) do
      {:ok, {:http_header, _, :"Content-Length", _, v}} -> headers(s, String.to_integer(v))
      {:ok, {:http_header, _, :"Transfer-Encoding", _, _}} -> headers(s, :chunked)
      {:ok, {:http_header, _, _, _, _}} -> headers(s, len)
      {:ok, :http_eoh} -> len
    end
  end

  # Chunked bodies (inets' mod_esi answers with them): size line, data, CRLF.
  defp chunks(s) do
    :ok = :inet.setopts(s, packet: :line)
    {:ok, line} = :gen_tcp.recv(s, 0, 30_000)
    {size, _} = Integer.parse(String.trim(line), 16)
    :ok = :inet.setopts(s, packet: :raw)

    if size == 0 do
      {:ok, "\r\n"} = :gen_tcp.recv(s, 2, 30_000)
    else
      {:ok, _} = :gen_tcp.recv(s, size + 2, 30_000)
      chunks(s)
    end
  end

  def get(port, path),
    do: "GET #{path} HTTP/1.1\r\nhost: 127.0.0.1:#{port}\r\n\r\n"

  def post(port, path, token, json),
    do:
      "POST #{path} HTTP/1.1\r\nhost: 127.0.0.1:#{port}\r\nauthorization: Bearer #{token}\r\n" <>
        "content-type: application/json\r\ncontent-length: #{byte_size(json)}\r\n\r\n" <> json

  # `conns` workers, each running `one.(state)` in a loop for @seconds;
  # returns {ops/s, [latency µs]} (latencies sampled: every op).
  def load(conns, init, one) do
    parent = self()
    stop_at = System.monotonic_time(:millisecond) + @seconds * 1000

    pids =
      for _ <- 1..conns do
        spawn_link(fn ->
          state = init.()
          send(parent, {:ready, self()})
          receive do: (:go -> :ok)
          lat = loop(state, one, stop_at, [])
          send(parent, {:done, self(), lat})
        end)
      end

    for p <- pids, do: receive(do: ({:ready, ^p} -> :ok))
    t0 = System.monotonic_time(:microsecond)
    for p <- pids, do: send(p, :go)

    lats =
      for p <- pids, reduce: [] do
        acc -> receive(do: ({:done, ^p, l} -> l ++ acc))
      end

    secs = (System.monotonic_time(:microsecond) - t0) / 1.0e6
    {length(lats) / secs, Enum.sort(lats)}
  end

  defp loop(state, one, stop_at, acc) do
    if System.monotonic_time(:millisecond) >= stop_at do
      acc
    else
      t = System.monotonic_time(:microsecond)
      one.(state)
      loop(state, one, stop_at, [System.monotonic_time(:microsecond) - t | acc])
    end
  end

  def rounds(name, conns, init, one) do
    results = for _ <- 1..@rounds, do: load(conns, init, one)
    rate = results |> Enum.map(&elem(&1, 0)) |> median()
    p50 = results |> Enum.map(&pct(elem(&1, 1), 0.5)) |> median()
    p99 = results |> Enum.map(&pct(elem(&1, 1), 0.99)) |> median()

    IO.puts(
      String.pad_trailing(name, 52) <>
        String.pad_leading("#{round(rate)}/s", 10) <>
        String.pad_leading("p50 #{Float.round(p50 / 1000, 2)} ms", 16) <>
        String.pad_leading("p99 #{Float.round(p99 / 1000, 2)} ms", 16)
    )

    rate
  end

  # --- SSE fan-out ------------------------------------------------------------

  # Every client reads every event; one in 20 also parses each frame for
  # its delivery latency (parsing in all 1,000 would make the clients, which
  # share the cores, the bottleneck). The rest only look for the last event.
  def sse_fanout(port, clients, events) do
    parent = self()

    pids =
      for n <- 1..clients do
        spawn_link(fn ->
          {:ok, s} =
            :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false, nodelay: true], 30_000)

          :ok = :gen_tcp.send(s, get(port, "/v1/events?types=bench"))
          {:ok, _} = recv_until(s, "keyring events", "")
          send(parent, {:ready, self()})

          lats =
            if rem(n, 20) == 0,
              do: read_events(s, events, "", []),
              else:
                (
                  {:ok, _} = recv_until(s, ~s("i":#{events},), "")
                  []
                )

          send(parent, {:done, self(), lats})
        end)
      end

    for p <- pids,
        do: receive(do: ({:ready, ^p} -> :ok), after: (60_000 -> raise "client not ready"))

    t0 = System.monotonic_time(:microsecond)

    # Paced in bursts of 10 so the fan-out, not the publisher, is measured.
    for i <- 1..events do
      {:ok, _} =
        Keyring.Gateway.publish("bench", %{"i" => i, "t" => System.monotonic_time(:microsecond)},
          instance: BenchGw
        )

      if rem(i, 10) == 0, do: Process.sleep(10)
    end

    lats =
      for p <- pids, reduce: [] do
        acc -> receive(do: ({:done, ^p, l} -> l ++ acc), after: (120_000 -> raise "client stuck"))
      end

    secs = (System.monotonic_time(:microsecond) - t0) / 1.0e6
    {clients * events / secs, events / secs, Enum.sort(lats)}
  end

  # Keeps only a tail as long as the needle, so reading is linear.
  defp recv_until(s, needle, acc) do
    if String.contains?(acc, needle) do
      {:ok, acc}
    else
      {:ok, data} = :gen_tcp.recv(s, 0, 60_000)
      keep = max(byte_size(acc) - byte_size(needle), 0)
      recv_until(s, needle, binary_part(acc, keep, byte_size(acc) - keep) <> data)
    end
  end

  # Reads until the event numbered `last`; latency per complete event frame.
  defp read_events(s, last, buf, lats) do
    {:ok, data} = :gen_tcp.recv(s, 0, 60_000)
    now = System.monotonic_time(:microsecond)
    frames = String.split(buf <> data, "\n\n")
    {complete, [rest]} = Enum.split(frames, -1)

    parsed =
      for f <- complete,
          [_, i, t] <- [Regex.run(~r/"i":(\d+),"t":(-?\d+)/, f)],
          do: {String.to_integer(i), now - String.to_integer(t)}

    lats = Enum.map(parsed, &elem(&1, 1)) ++ lats
    if Enum.any?(parsed, &(elem(&1, 0) == last)), do: lats, else: read_events(s, last, rest, lats)
  end
end

tmp = Path.join(System.tmp_dir!(), "keyring-gateway-bench-#{System.os_time()}")

{:ok, _} =
  Keyring.start_link(
    name: BenchGw,
    data_dir: tmp <> "/a",
    gateway: [port: 0, max_sse_clients: 4096]
  )

{:ok, _} = Keyring.start_link(name: BenchPeer, data_dir: tmp <> "/b")
{:ok, ring} = Keyring.Ring.create("bench", instance: BenchPeer)
{:ok, invite} = Keyring.Ring.invite(ring, instance: BenchPeer)
{:ok, ^ring} = Keyring.join(invite, instance: BenchGw)
:ok = Keyring.expose(:echo, & &1, instance: BenchPeer)
peer = Keyring.Identity.node_id(instance: BenchPeer)
{:ok, "hi"} = Keyring.call(peer, :echo, "hi", instance: BenchGw, timeout: 10_000)

port = URI.parse(Keyring.Gateway.url(instance: BenchGw)).port
token = Keyring.Gateway.token(instance: BenchGw)

{:ok, inets} =
  :inets.start(:httpd,
    port: 0,
    server_name: ~c"bench",
    server_root: to_charlist(tmp),
    document_root: to_charlist(tmp),
    bind_address: {127, 0, 0, 1},
    modules: [:mod_esi],
    erl_script_alias: {~c"/esi", [:gw_bench_esi]},
    socket_type: {:ip_comm, [nodelay: true]},
    max_clients: 1000
  )

[port: inets_port] = :httpd.info(inets, [:port])

IO.puts(
  "Keyring gateway benchmark (#{System.schedulers_online()} schedulers; client and server share the machine)\n"
)

IO.puts(
  String.pad_trailing("contender", 52) <>
    String.pad_leading("rate", 10) <>
    String.pad_leading("latency", 16) <> String.pad_leading("", 16)
)

status_req = GatewayBench.get(port, "/v1/status")
page_req = GatewayBench.get(port, "/")
esi_req = GatewayBench.get(inets_port, "/esi/gw_bench_esi:status")

rpc_req =
  GatewayBench.post(port, "/v1/rpc/#{peer}/echo", token, ~s({"args":"hello","timeout_ms":10000}))

http = fn p, req ->
  {fn -> GatewayBench.connect(p) end, fn s -> 200 = GatewayBench.request(s, req) end}
end

ctx = GatewayBench.ctx()

elixir_status =
  {fn -> :ok end, fn _ -> {:ok, 200, _} = Keyring.Gateway.Operations.run("status", %{}, ctx) end}

elixir_call =
  {fn -> :ok end,
   fn _ ->
     {:ok, "hello"} = Keyring.call(peer, :echo, "hello", instance: BenchGw, timeout: 10_000)
   end}

results =
  for conns <- [1, 64] do
    IO.puts("\n-- #{conns} connection(s) / caller(s)")
    {i, o} = http.(port, status_req)
    gw = GatewayBench.rounds("GET /v1/status via gateway", conns, i, o)
    {i, o} = elixir_status
    ex = GatewayBench.rounds("status operation called from Elixir", conns, i, o)
    {i, o} = http.(port, page_req)
    page = GatewayBench.rounds("GET / (gateway alone, no BEAM hop)", conns, i, o)
    {i, o} = http.(inets_port, esi_req)
    esi = GatewayBench.rounds("GET status via :inets httpd + mod_esi (nodelay)", conns, i, o)
    {i, o} = http.(port, rpc_req)
    rpc = GatewayBench.rounds("POST /v1/rpc/{peer}/echo via gateway (QUIC)", conns, i, o)
    {i, o} = elixir_call
    call = GatewayBench.rounds("Keyring.call/4 echo from Elixir (QUIC)", conns, i, o)

    IO.puts(
      "   gateway/inets status #{Float.round(gw / esi, 2)}x; gateway status = #{Float.round(gw / ex * 100, 1)}% of Elixir; " <>
        "gateway RPC = #{Float.round(rpc / call * 100, 1)}% of Keyring.call; page/status #{Float.round(page / gw, 2)}x"
    )

    {conns, gw, esi, rpc, call}
  end

_ = results
IO.puts("\n-- SSE fan-out to 1,000 clients (events paced in bursts of 10 every 10 ms)")

for round <- 1..2 do
  {deliveries, published, lats} = GatewayBench.sse_fanout(port, 1000, 300)

  IO.puts(
    "   round #{round}: #{round(published)} events/s published, #{round(deliveries)} deliveries/s, " <>
      "delivery p50 #{Float.round(GatewayBench.pct(lats, 0.5) / 1000, 2)} ms, p99 #{Float.round(GatewayBench.pct(lats, 0.99) / 1000, 2)} ms " <>
      "(latency sampled in #{length(lats)} deliveries to 50 clients)"
  )
end

IO.puts("\nGateway counters: #{inspect(Keyring.Gateway.stats(instance: BenchGw))}")
:inets.stop(:httpd, inets)
File.rm_rf(tmp)
