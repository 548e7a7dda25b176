defmodule Keyring.Cluster.Strategy.Gossip do
  @moduledoc """
  LAN discovery by authenticated UDP multicast.

      config :keyring, :cluster_topologies,
        lan: [
          strategy: Keyring.Cluster.Strategy.Gossip,
          config: [secret: System.fetch_env!("KEYRING_GOSSIP_SECRET")]
        ]

  Every node multicasts an announcement (its node name, Ed25519 public key and
  incarnation) every `:interval` ms (jittered ±25 %). A node receiving a valid
  announcement from a node it is not connected to connects to it over Erlang
  distribution (which still needs the shared cookie).

  ## Packets

  Announcements are at most 512 bytes: a versioned header, a millisecond
  timestamp, a 16-byte random nonce, the public key, the incarnation, the
  cluster (topology) name and the node name, then an HMAC-SHA256 tag over all
  of it keyed with `:secret`. Received packets are decoded by a Rust codec
  with fixed limits (never `binary_to_term`), then dropped and counted when:

    * `:junk` — they do not decode (wrong size, magic, version, names...);
    * `:bad_mac` — the tag does not verify (another secret, or tampering);
    * `:foreign` — they belong to another cluster name;
    * `:stale` — the timestamp is more than `:max_skew` ms away from our clock;
    * `:replayed` — the nonce was already seen within the skew window.

  Only a packet that passes all checks turns a node name into an atom, and at
  most `:max_nodes` distinct names are ever created. `stats/1` returns the
  counters. (libcluster's Gossip encrypts without a MAC, accepts replays and
  runs `binary_to_term/1` on packets.)

  ## Config

    * `:secret` (required) — shared secret, at least 16 bytes
    * `:port` — UDP port (default 45892)
    * `:multicast_addr` — group (default `{233, 252, 1, 32}`)
    * `:if_addr` — interface to bind (default `{0, 0, 0, 0}`)
    * `:multicast_if` — interface to send/join on (default: system choice)
    * `:multicast_ttl` — default 1 (this LAN only)
    * `:interval` — ms between announcements (default 5_000)
    * `:max_skew` — accepted clock difference in ms (default 30_000)
    * `:max_nodes` — cap on distinct node names accepted (default 1_024)
    * `:name` — register the strategy process under this name (for `stats/1`)
  """
  @behaviour Keyring.Cluster.Strategy
  use GenServer
  require Logger

  alias Keyring.{Identity, Instance, Native}
  alias Keyring.Cluster.Strategy

  @tag_len 32

  @impl Strategy
  def start_link(opts) do
    gen_opts = if name = opts[:config][:name], do: [name: name], else: []
    GenServer.start_link(__MODULE__, opts, gen_opts)
  end

  @doc "Counters of accepted and dropped packets."
  @spec stats(GenServer.server()) :: map()
  def stats(server), do: GenServer.call(server, :stats)

  @doc "Sends an announcement now (normally done on a timer)."
  @spec announce(GenServer.server()) :: :ok
  def announce(server), do: GenServer.cast(server, :announce)

  @doc "The bound UDP port (useful with `port: 0`)."
  @spec port(GenServer.server()) :: :inet.port_number()
  def port(server), do: GenServer.call(server, :port)

  @impl GenServer
  def init(opts) do
    config =
      Keyword.validate!(opts[:config],
        secret: nil,
        port: 45_892,
        multicast_addr: {233, 252, 1, 32},
        if_addr: {0, 0, 0, 0},
        multicast_if: nil,
        multicast_ttl: 1,
        interval: 5_000,
        max_skew: 30_000,
        max_nodes: 1_024,
        name: nil
      )

    secret = config[:secret]

    unless is_binary(secret) and byte_size(secret) >= 16,
      do: raise(ArgumentError, "Gossip :secret must be a binary of at least 16 bytes")

    for key <- [:interval, :max_skew, :max_nodes],
        not (is_integer(config[key]) and config[key] > 0),
        do: raise(ArgumentError, "Gossip #{inspect(key)} must be a positive integer")

    case open(config) do
      {:ok, socket} -> init_state(socket, config, secret, opts)
      {:error, reason} -> {:stop, {:gossip_socket, reason, port: config[:port]}}
    end
  end

  defp init_state(socket, config, secret, opts) do
    instance = opts[:instance]
    cluster = to_string(opts[:topology])

    state = %{
      socket: socket,
      config: config,
      secret: secret,
      cluster: cluster,
      instance: instance,
      public_key: Identity.public_key(instance: instance),
      nonces: %{},
      names: MapSet.new(),
      stats: %{accepted: 0, junk: 0, bad_mac: 0, foreign: 0, stale: 0, replayed: 0, own: 0}
    }

    send(self(), :announce)
    :timer.send_interval(config[:max_skew], :prune)
    {:ok, state}
  end

  defp open(config) do
    mif = config[:multicast_if]

    opts =
      [
        :binary,
        active: 100,
        reuseaddr: true,
        ip: config[:if_addr],
        multicast_ttl: config[:multicast_ttl],
        multicast_loop: true,
        add_membership: {config[:multicast_addr], mif || {0, 0, 0, 0}}
      ] ++ if(mif, do: [multicast_if: mif], else: []) ++ reuseport()

    :gen_udp.open(config[:port], opts)
  end

  # SO_REUSEPORT so several nodes on one host share the port (Linux/BSD).
  defp reuseport do
    case :os.type() do
      {:unix, :linux} ->
        [{:raw, 1, 15, <<1::native-32>>}]

      {:unix, os} when os in [:darwin, :freebsd, :openbsd, :netbsd] ->
        [{:raw, 0xFFFF, 0x0200, <<1::native-32>>}]

      _ ->
        []
    end
  end

  @impl GenServer
  def handle_call(:stats, _from, state), do: {:reply, state.stats, state}

  def handle_call(:port, _from, state) do
    {:ok, port} = :inet.port(state.socket)
    {:reply, port, state}
  end

  @impl GenServer
  def handle_cast(:announce, state) do
    send_announce(state)
    {:noreply, state}
  end

  @impl GenServer
  def handle_info(:announce, state) do
    send_announce(state)
    interval = state.config[:interval]
    jitter = div(interval, 4)
    Process.send_after(self(), :announce, interval - jitter + :rand.uniform(2 * jitter + 1))
    {:noreply, state}
  end

  def handle_info({:udp, _socket, _ip, _port, packet}, state) do
    {:noreply, receive_packet(state, packet)}
  end

  def handle_info({:udp_passive, socket}, state) do
    :inet.setopts(socket, active: 100)
    {:noreply, state}
  end

  def handle_info(:prune, state) do
    now = System.os_time(:millisecond)
    nonces = for {n, expiry} <- state.nonces, expiry > now, into: %{}, do: {n, expiry}
    {:noreply, %{state | nonces: nonces}}
  end

  def handle_info(_other, state), do: {:noreply, state}

  ## Sending

  defp send_announce(state) do
    if Node.alive?() do
      {:ok, body} =
        Native.gossip_encode(
          System.os_time(:millisecond),
          :crypto.strong_rand_bytes(16),
          state.public_key,
          incarnation(state.instance),
          state.cluster,
          Atom.to_string(node())
        )

      packet = body <> :crypto.mac(:hmac, :sha256, state.secret, body)
      :gen_udp.send(state.socket, state.config[:multicast_addr], state.config[:port], packet)
    end

    :ok
  end

  defp incarnation(instance) do
    Instance.fetch!(instance, :incarnation)
  rescue
    ArgumentError -> 0
  end

  ## Receiving

  @doc false
  # Validates one packet; returns {:ok, node_name, nonce, ts} or {:error, counter}.
  def check(packet, state, now) do
    with {:ok, {ts, nonce, _pk, _inc, cluster, node_name}} <- decode(packet),
         :ok <- verify_mac(packet, state.secret),
         :ok <- if(cluster == state.cluster, do: :ok, else: {:error, :foreign}),
         :ok <- if(abs(now - ts) <= state.config[:max_skew], do: :ok, else: {:error, :stale}),
         :ok <- if(Map.has_key?(state.nonces, nonce), do: {:error, :replayed}, else: :ok) do
      {:ok, node_name, nonce, ts}
    end
  end

  defp decode(packet) do
    case Native.gossip_decode(packet) do
      {:ok, fields} -> {:ok, fields}
      {:error, _reason} -> {:error, :junk}
    end
  end

  defp verify_mac(packet, secret) do
    size = byte_size(packet) - @tag_len
    <<signed::binary-size(size), tag::binary-size(@tag_len)>> = packet

    if :crypto.hash_equals(:crypto.mac(:hmac, :sha256, secret, signed), tag),
      do: :ok,
      else: {:error, :bad_mac}
  end

  defp receive_packet(state, packet) do
    now = System.os_time(:millisecond)

    case check(packet, state, now) do
      {:ok, node_name, nonce, ts} ->
        # Remember the nonce until the packet itself would be stale.
        expiry = max(now, ts) + state.config[:max_skew]
        state = %{state | nonces: Map.put(state.nonces, nonce, expiry)}
        handle_announce(state, node_name)

      {:error, counter} ->
        bump(state, counter)
    end
  end

  defp handle_announce(state, node_name) do
    cond do
      node_name == Atom.to_string(node()) ->
        bump(state, :own)

      MapSet.member?(state.names, node_name) or
          MapSet.size(state.names) < state.config[:max_nodes] ->
        # Authenticated, fresh, in our cluster, and within the name budget.
        node = String.to_atom(node_name)
        Strategy.connect(state.cluster, [node])
        %{bump(state, :accepted) | names: MapSet.put(state.names, node_name)}

      true ->
        Logger.warning(
          "[Keyring.Cluster:#{state.cluster}] max_nodes reached; ignoring #{node_name}"
        )

        bump(state, :foreign)
    end
  end

  defp bump(state, counter), do: %{state | stats: Map.update!(state.stats, counter, &(&1 + 1))}
end
