defmodule Keyring.Feed.Replicator do
  @moduledoc false
  # Replicates feeds and signed refs between members of a keyring over the
  # mesh (protocol 5, native/keyring_net src/protocols/feeds.rs):
  #
  #   * push: every entry and ref this node authors is sent, as soon as it
  #     is chained (the "keyring:feed" event), to every linked member of
  #     its keyring;
  #   * pull: when a member links up ("keyring:mesh" :peer_up), this node
  #     sends its heads and follows and ingests what follows them (in
  #     rounds of up to 2048 entries), and the peer's refs;
  #   * ingest: what arrives (pushed or pulled) goes through
  #     Keyring.Feed.ingest/3 and Keyring.Refs.ingest/3, which verify it;
  #     entries of authors this node does not follow in that keyring (when
  #     it follows anyone there) are dropped first.
  #
  # The mesh is read at start; an instance without one replicates nothing.

  use GenServer
  require Logger

  alias Keyring.{Feed, Instance, Native, Refs}

  @ingest_chunk 256
  @pull_timeout 120_000
  @follows_ttl_ms 1_000

  def start_link(opts),
    do: GenServer.start_link(__MODULE__, opts, name: server(opts[:name]))

  def server(instance), do: Module.concat([instance, "Feed.Replicator"])

  @impl GenServer
  def init(opts) do
    name = opts[:name]

    case Instance.get(name, :mesh, nil) do
      nil ->
        :ignore

      mesh ->
        :ok = Native.mesh_feeds_attach(mesh, self())
        Feed.subscribe(instance: name)
        Keyring.Mesh.subscribe(instance: name)
        me = Instance.fetch!(name, :public_key)
        send(self(), :pull_connected)
        {:ok, %{name: name, mesh: mesh, me: me, follows: %{}}}
    end
  end

  @impl GenServer
  def handle_info({:keyring_feed, :entry, %{author: me} = entry}, %{me: me} = state) do
    # Entries chained meanwhile go in the same push.
    entries = [entry.bytes | more_own(entry.keyring, me, 255)]
    Native.mesh_feeds_push(state.mesh, entry.keyring, entries, [])
    {:noreply, state}
  end

  def handle_info({:keyring_feed, :ref, %{author: me} = ref}, %{me: me} = state) do
    Native.mesh_feeds_push(state.mesh, ref.keyring, [], [ref.bytes])
    {:noreply, state}
  end

  def handle_info({:keyring_feeds, {:pushed, ring, _peer, entries, refs}}, state) do
    # Pushes that arrived while the last ingest ran go in one ingest (one
    # durable commit for all of them).
    {entries, refs} = more_pushed(ring, entries, refs)
    {wanted, state} = followed(state, ring, entries)
    ingest(state.name, ring, wanted, refs)
    {:noreply, state}
  end

  def handle_info({:keyring_mesh, :peer_up, %{keyring: ring, peer: peer}}, state) do
    pull(state, ring, peer)
    {:noreply, state}
  end

  def handle_info(:pull_connected, state) do
    for ring <- Keyring.Ring.list(instance: state.name),
        peer <- Keyring.Ring.connected(ring, instance: state.name),
        do: pull(state, ring, peer)

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp more_own(ring, me, left) when left > 0 do
    receive do
      {:keyring_feed, :entry, %{author: ^me, keyring: ^ring, bytes: bytes}} ->
        [bytes | more_own(ring, me, left - 1)]
    after
      0 -> []
    end
  end

  defp more_own(_ring, _me, _left), do: []

  defp more_pushed(ring, entries, refs) when length(entries) < @ingest_chunk * 4 do
    receive do
      {:keyring_feeds, {:pushed, ^ring, _peer, more, more_refs}} ->
        more_pushed(ring, entries ++ more, refs ++ more_refs)
    after
      0 -> {entries, refs}
    end
  end

  defp more_pushed(_ring, entries, refs), do: {entries, refs}

  # Pulls in a task: the answer may take a while, and pushes keep flowing.
  defp pull(state, ring, peer) do
    %{name: name, mesh: mesh} = state

    Task.start(fn ->
      follows = Feed.follows(ring, instance: name)
      authors = if follows == [], do: nil, else: follows
      heads = Feed.heads(ring, instance: name)
      ref = make_ref()
      :ok = Native.mesh_feeds_pull(mesh, ref, ring, peer, nil, authors, heads, @pull_timeout)

      receive do
        {:keyring_reply, ^ref, {:ok, {entries, refs, _rounds}}} ->
          ingest(name, ring, entries, refs)

        {:keyring_reply, ^ref, {:error, reason}} ->
          Logger.debug(
            "keyring: feed pull from #{Base.encode16(peer)} failed: #{inspect(reason)}"
          )
      after
        @pull_timeout + 2_000 -> :ok
      end
    end)
  end

  defp ingest(name, ring, entries, refs) do
    for chunk <- Enum.chunk_every(entries, @ingest_chunk),
        do: report(Feed.ingest(ring, chunk, instance: name), "entries")

    for chunk <- Enum.chunk_every(refs, @ingest_chunk),
        do: report(Refs.ingest(ring, chunk, instance: name), "refs")

    :ok
  end

  defp report({:ok, results}, what) do
    refused = Enum.count(results, &match?({:error, _}, &1))

    if refused > 0,
      do: Logger.info("keyring: refused #{refused} of #{length(results)} replicated #{what}")
  end

  defp report(error, what),
    do: Logger.info("keyring: ingesting #{what} failed: #{inspect(error)}")

  # Entries of followed authors (all when this node follows no one there).
  # An entry's author is at bytes 33..64 (after version and keyring).
  defp followed(state, ring, entries) do
    now = System.monotonic_time(:millisecond)

    {follows, state} =
      case state.follows do
        %{^ring => {at, list}} when now - at < @follows_ttl_ms ->
          {list, state}

        _ ->
          list = Feed.follows(ring, instance: state.name)
          {list, put_in(state.follows[ring], {now, list})}
      end

    wanted =
      if follows == [],
        do: entries,
        else:
          Enum.filter(entries, fn
            <<_v, _ring::binary-size(32), author::binary-size(32), _::binary>> ->
              author in follows

            _ ->
              false
          end)

    {wanted, state}
  end
end
