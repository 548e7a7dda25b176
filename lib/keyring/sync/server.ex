defmodule Keyring.Sync.Server do
  @moduledoc false
  # The Sync process of an instance: starts transfers (the bytes move in Rust,
  # see native/keyring_nif/src/sync.rs), folds their progress messages into
  # Keyring.Sync.Transfer maps, publishes them on "keyring:sync", answers
  # waiting callers, and runs a sync round when a member of a mirrored keyring
  # links up. It never waits on the network itself: every native call answers
  # by message.

  use GenServer

  require Logger
  alias Keyring.{Instance, Native}
  alias Keyring.Sync.Transfer

  @list_page 4096
  # Keyrings marked with Keyring.Sync.mirror/2 are remembered in the store
  # under this ref prefix, so a restarted node keeps mirroring them.
  @mirror_refs "keyring/sync/mirror/"

  def server(instance), do: Instance.child_name(instance, Keyring.Sync)

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: server(opts[:instance]))
  end

  @impl GenServer
  def init(opts) do
    instance = opts[:instance]
    Keyring.PubSub.subscribe(Keyring.Mesh.topic(), instance: instance)
    sync = opts[:sync]

    state = %{
      instance: instance,
      opts: sync,
      mirror:
        MapSet.new(sync[:mirror], &Keyring.Ring.id!/1) |> MapSet.union(remembered(instance)),
      transfers: %{},
      finished: :queue.new(),
      refs: %{},
      waiters: %{},
      next_id: 1
    }

    attach(state)
    {:ok, state}
  end

  defp remembered(instance) do
    case Keyring.Store.list_refs(@mirror_refs, instance: instance) do
      {:ok, refs} ->
        MapSet.new(refs, fn {name, _} -> binary_part(name, byte_size(@mirror_refs), 32) end)

      _ ->
        MapSet.new()
    end
  rescue
    _ -> MapSet.new()
  end

  # The mesh may have restarted with a fresh resource: attach the store to
  # whatever mesh is current (cheap, idempotent).
  defp attach(state) do
    with mesh when mesh != nil <- Instance.get(state.instance, :mesh, nil),
         store when store != nil <- Instance.get(state.instance, :store, nil) do
      Native.sync_attach_store(mesh, store)
    end
  end

  @impl GenServer
  def handle_call({:fetch, cids, keyring, from_peers, wait?}, from, state) do
    attach(state)

    case providers(state, keyring, from_peers) do
      {:ok, ring, providers} ->
        case start(state, ring, cids, providers, :fetch) do
          {:ok, id, state} when wait? ->
            {:noreply, %{state | waiters: Map.put(state.waiters, id, from)}}

          {:ok, id, state} ->
            {:reply, {:ok, id}, state}

          {:error, _} = error ->
            {:reply, error, state}
        end

      {:error, _} = error ->
        {:reply, error, state}
    end
  end

  def handle_call(:transfers, _from, state) do
    list = state.transfers |> Map.values() |> Enum.sort_by(& &1.id)
    {:reply, list, state}
  end

  def handle_call({:mirror, ring, on?}, _from, state) do
    name = @mirror_refs <> ring

    if on?,
      do: :ok = Keyring.Store.put_ref(name, "1", instance: state.instance),
      else: {:ok, _} = Keyring.Store.delete_ref(name, instance: state.instance)

    mirror = if on?, do: MapSet.put(state.mirror, ring), else: MapSet.delete(state.mirror, ring)

    state = %{state | mirror: mirror}
    state = if on?, do: round_for_ring(state, ring), else: state
    {:reply, :ok, state}
  end

  def handle_call(:mirrored, _from, state), do: {:reply, MapSet.to_list(state.mirror), state}

  @impl GenServer
  def handle_info({:keyring_sync, id, {:progress, p}}, state) do
    case Map.fetch(state.transfers, id) do
      {:ok, %{stage: :running} = t} ->
        t = Transfer.progress(t, p)
        publish(state, {:keyring_sync, :progress, t})
        {:noreply, put_in(state.transfers[id], t)}

      _ ->
        {:noreply, state}
    end
  end

  def handle_info({:keyring_reply, ref, result}, state) do
    {entry, refs} = Map.pop(state.refs, ref)
    state = %{state | refs: refs}

    case entry do
      {:fetch, id} -> {:noreply, finished(state, id, result)}
      {:list, ring, peer, acc} -> {:noreply, listed(state, ring, peer, acc, result)}
      nil -> {:noreply, state}
    end
  end

  def handle_info({:keyring_sync_reconciled, ring, peer, {:ok, %{need: need}}}, state) do
    {:noreply, fetch_missing(state, ring, peer, need)}
  end

  def handle_info({:keyring_sync_reconciled, ring, peer, {:error, _}}, state) do
    {:noreply, list_next(state, ring, peer, <<>>, [])}
  end

  def handle_info({:keyring_mesh, :peer_up, %{keyring: ring, peer: peer}}, state) do
    attach(state)

    if state.opts[:auto] and MapSet.member?(state.mirror, ring) do
      {:noreply, reconcile(state, ring, peer)}
    else
      {:noreply, state}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  # --- transfers ---

  defp start(state, ring, cids, providers, reason) do
    mesh = Instance.get(state.instance, :mesh, nil)
    ref = make_ref()
    id = state.next_id

    case mesh &&
           Native.sync_fetch(
             mesh,
             ref,
             id,
             ring,
             providers,
             cids,
             state.opts[:stall_ms],
             state.opts[:slice_groups]
           ) do
      :ok ->
        t = Transfer.new(id, ring, cids, Enum.map(providers, &elem(&1, 0)), reason, now())
        publish(state, {:keyring_sync, :started, t})

        {:ok, id,
         %{
           state
           | next_id: id + 1,
             transfers: Map.put(state.transfers, id, t),
             refs: Map.put(state.refs, ref, {:fetch, id})
         }}

      nil ->
        {:error, :mesh_down}

      {:error, _} = error ->
        error
    end
  end

  defp finished(state, id, result) do
    t = Transfer.finish(state.transfers[id], result, now())
    publish(state, {:keyring_sync, :finished, t})
    if t.reason == :mirror and t.stage == :done, do: follow_dags(state.instance, t)

    {waiter, waiters} = Map.pop(state.waiters, id)

    if waiter do
      GenServer.reply(waiter, if(t.stage == :done, do: {:ok, t}, else: {:error, t.stage, t}))
    end

    state = %{state | waiters: waiters, transfers: Map.put(state.transfers, id, t)}
    trim(%{state | finished: :queue.in(id, state.finished)})
  end

  defp trim(state) do
    if :queue.len(state.finished) > state.opts[:keep_finished] do
      {{:value, old}, q} = :queue.out(state.finished)
      %{state | finished: q, transfers: Map.delete(state.transfers, old)}
    else
      state
    end
  end

  # Which members to fetch from: `from` peers, or every linked member of the
  # keyring (given, or the first keyring with a linked member).
  defp providers(state, keyring, from) do
    rings = Instance.get(state.instance, :rings, %{}) |> Map.keys()

    ring =
      cond do
        keyring != nil ->
          keyring

        from != nil ->
          Enum.find(rings, fn r -> Enum.any?(from, &(elem(&1, 0) in connected(state, r))) end) ||
            List.first(rings)

        true ->
          Enum.find(rings, fn r -> connected(state, r) != [] end)
      end

    cond do
      ring == nil -> {:error, :no_keyring}
      ring not in rings -> {:error, :not_member}
      from != nil -> {:ok, ring, from}
      (peers = connected(state, ring)) != [] -> {:ok, ring, Enum.map(peers, &{&1, nil})}
      true -> {:error, :no_providers}
    end
  end

  defp connected(state, ring) do
    case Instance.get(state.instance, :mesh, nil) do
      nil -> []
      mesh -> Keyring.Mesh.Quic.connected(mesh, ring)
    end
  end

  # --- sync rounds: list what a member shares into a mirrored keyring,
  # fetch it ---

  defp round_for_ring(state, ring) do
    Enum.reduce(connected(state, ring), state, fn peer, st -> reconcile(st, ring, peer) end)
  end

  # What the peer shares in `ring` and this node lacks comes from set
  # reconciliation (mesh protocol 6: a few round trips and bytes in
  # proportion to the differences, not to the sets); the call waits for
  # the network, so it runs in a process of its own and reports back. A
  # peer that cannot reconcile (an error) is listed instead.
  defp reconcile(state, ring, peer) do
    server = self()
    instance = state.instance

    spawn(fn ->
      result = Keyring.Mesh.reconcile(peer, ring, instance: instance)
      send(server, {:keyring_sync_reconciled, ring, peer, result})
    end)

    state
  end

  defp list_next(state, ring, peer, after_name, acc) do
    mesh = Instance.get(state.instance, :mesh, nil)
    ref = make_ref()

    case mesh && Native.sync_list(mesh, ref, ring, peer, nil, after_name, @list_page, 30_000) do
      :ok -> %{state | refs: Map.put(state.refs, ref, {:list, ring, peer, acc})}
      _ -> state
    end
  end

  defp listed(state, ring, peer, acc, {:ok, entries}) do
    acc = acc ++ Enum.map(entries, fn {_name, cid, _size} -> cid end)

    if length(entries) == @list_page do
      {last, _, _} = List.last(entries)
      list_next(state, ring, peer, last, acc)
    else
      fetch_missing(state, ring, peer, acc)
    end
  end

  defp listed(state, _ring, _peer, _acc, {:error, _}), do: state

  # A mirrored cid that is a DAG root (a directory tree, an event chain)
  # brings only its root node by blob transfer: what it links to is served
  # by DAG sync (mesh protocol 4: one round trip whatever the depth), and
  # its blobs over 1 MiB come back as `deferred`, fetched by blob transfer.
  defp follow_dags(instance, t) do
    peers = Map.keys(t.providers)

    spawn(fn ->
      for cid <- t.cids, dag_with_missing_links?(cid, instance), peer <- Enum.take(peers, 1) do
        opts = [from: peer, keyring: t.keyring, blobs: true, instance: instance]

        case Keyring.DAG.fetch(cid, opts) do
          {:ok, %{deferred: [_ | _] = big}} ->
            cids = Enum.map(big, fn {cid, _size} -> cid end)
            Keyring.Sync.fetch(cids, from: [peer], keyring: t.keyring, instance: instance)

          {:ok, _} ->
            :ok

          {:error, reason} ->
            Logger.warning(
              "keyring: mirroring DAG #{Base.encode16(cid, case: :lower)}: #{inspect(reason)}"
            )
        end
      end
    end)
  end

  defp dag_with_missing_links?(cid, instance) do
    case Keyring.DAG.get_node(cid, instance: instance) do
      {:ok, _node} ->
        Keyring.DAG.stream(cid, instance: instance, max_depth: 1, blobs: true)
        |> Enum.any?(fn {_cid, depth, value} -> depth > 0 and value == :missing end)

      _ ->
        false
    end
  rescue
    _ -> false
  end

  defp fetch_missing(state, ring, peer, cids) do
    wanted =
      cids
      |> Enum.map(&Keyring.Store.Cid.parse!/1)
      |> Enum.uniq()
      |> Enum.reject(&Keyring.Store.has?(&1, instance: state.instance))

    if wanted == [] do
      state
    else
      case start(state, ring, wanted, [{peer, nil}], :mirror) do
        {:ok, _id, state} -> state
        {:error, _} -> state
      end
    end
  end

  defp publish(state, message) do
    Keyring.PubSub.local_broadcast(Keyring.Sync.topic(), message, instance: state.instance)
  rescue
    ArgumentError -> :ok
  end

  defp now, do: System.system_time(:millisecond)
end
