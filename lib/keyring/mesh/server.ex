defmodule Keyring.Mesh.Server do
  @moduledoc false
  # The mesh plane's process: owns the QUIC mesh handle, holds the keyring
  # state (Keyring.Mesh.Rings, a pure value) and carries out the effects the
  # core returns. Callers reach the transport from their own process (the
  # handle and the membership view are in :persistent_term); this process
  # serialises membership changes and receives the transport's events.
  #
  # :persistent_term keys it writes (Keyring.Instance): :mesh (the handle),
  # :rings (the membership view callers and Dispatch read), :handles and
  # :gate (Keyring.Mesh.Handles), :mesh_addresses.

  use GenServer
  require Logger

  alias Keyring.{Instance, Native}
  alias Keyring.Identity.NodeId
  alias Keyring.Mesh.{AddressBook, Dispatch, Handles, Log, Persistence, Quic, Rings}

  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: server(opts[:name]))
  end

  @spec server(Keyring.instance()) :: atom()
  def server(instance), do: Instance.child_name(instance, __MODULE__)

  @impl GenServer
  def init(opts) do
    name = opts[:name]
    mesh_opts = opts[:mesh]

    case Quic.start(opts[:keypair], Instance.fetch!(name, :store), mesh_opts) do
      {:ok, mesh} ->
        Process.flag(:trap_exit, true)
        {mesh_addr, join_addr} = Quic.addresses(mesh)
        addresses = {mesh_opts[:advertise] || mesh_addr, mesh_opts[:advertise_join] || join_addr}
        Instance.put(name, :mesh, mesh)
        Instance.put(name, :mesh_addresses, addresses)
        Handles.init(name)
        dispatch = %{instance: name, mesh: mesh, limit: mesh_opts[:max_handlers_per_peer]}
        Dispatch.start_link(dispatch)
        # Published even when empty: a node that belongs to no keyring yet
        # answers calls with {:error, :not_member} instead of raising.
        Instance.put(name, :rings, %{})

        state = %{
          name: name,
          keypair: opts[:keypair],
          # Seals the root keys of keyrings this node creates (as the identity key).
          passphrase: opts[:passphrase],
          data_dir: opts[:data_dir],
          mesh: mesh,
          dispatch: dispatch,
          joins_per_hour: mesh_opts[:joins_per_issuer_per_hour],
          anti_entropy_ms: mesh_opts[:anti_entropy_ms],
          addresses: addresses,
          rings: Rings.new(Native.keypair_public_key(opts[:keypair])),
          joins: %{},
          # Where each peer was last reached (see AddressBook).
          book: %{}
        }

        {rings, effects, failed} = Rings.restore(state.rings, Persistence.load_all(name), now())

        for {id, reason} <- failed,
            do:
              Logger.error(
                "keyring: stored keyring #{hex(id)} does not verify: #{inspect(reason)}"
              )

        state = carry_out(%{state | rings: rings}, effects, [:members])
        Keyring.PubSub.subscribe(Keyring.PubSub.presence_topic(), instance: name)
        announce_to_cluster(state)
        schedule_anti_entropy(state)
        {:ok, redial_known_members(%{state | book: AddressBook.load(name)})}

      {:error, reason} ->
        {:stop, {:mesh, reason}}
    end
  end

  @impl GenServer
  def terminate(_reason, state) do
    Quic.close(state.mesh)
    Handles.terminate(state.name)
    Enum.each([:mesh, :rings, :mesh_addresses], &Instance.erase(state.name, &1))
  end

  # Crash reports and :sys.get_status never show key handles or the
  # passphrase.
  @impl GenServer
  def format_status(_reason, [_pdict, state]) do
    %{
      state
      | keypair: :redacted,
        passphrase: :redacted,
        rings: Map.keys(state.rings.rings)
    }
  end

  # --- membership ------------------------------------------------------------

  @impl GenServer
  def handle_call({:create, ring_name}, _from, state) do
    case Native.keypair_generate() do
      {:ok, root} -> apply_core(state, Rings.create(state.rings, ring_name, root, now()))
      error -> {:reply, error, state}
    end
  end

  def handle_call({:change, id, op}, _from, state),
    do: apply_core(state, Rings.change(state.rings, id, state.keypair, op, now()))

  def handle_call({:import, entries}, _from, state),
    do: apply_core(state, Rings.import(state.rings, entries, state.keypair, now()))

  def handle_call({:rotate_root, id}, _from, state) do
    with {:ok, root} <- Persistence.load_root_key(state.data_dir, id, state.passphrase),
         {:ok, new_root} <- Native.keypair_generate() do
      apply_core(state, Rings.rotate_root(state.rings, id, root, new_root, now()))
    else
      {:error, {:not_found, _path}} -> {:reply, {:error, :not_the_root}, state}
      error -> {:reply, error, state}
    end
  end

  def handle_call({:leave, id}, _from, state),
    do: apply_core(state, Rings.leave(state.rings, id))

  def handle_call({:invite, id, opts}, _from, state) do
    {mesh_addr, join_addr} = state.addresses

    reply =
      with :ok <- Rings.check_invite(state.rings, id) do
        Native.invite_create(
          state.keypair,
          id,
          :crypto.strong_rand_bytes(16),
          now() + opts[:ttl],
          opts[:max_uses],
          "#{mesh_addr} #{join_addr}",
          opts[:roles],
          opts[:bind]
        )
      end

    {:reply, reply, state}
  end

  # `addresses` are the invite's hints, already checked and resolved by the
  # caller (Keyring.Ring.join/2).
  def handle_call({:join, bytes, invite, {mesh_addr, join_addr}, timeout}, from, state) do
    ref = make_ref()
    :ok = Quic.join(state.mesh, ref, join_addr, invite.issuer, bytes, timeout)
    {:noreply, put_in(state.joins[ref], {:join, from, invite, mesh_addr})}
  end

  def handle_call({:info, id}, _from, state) do
    {:reply, with({:ok, ring} <- Rings.fetch(state.rings, id), do: {:ok, Log.info(ring.log)}),
     state}
  end

  def handle_call({:log, id}, _from, state) do
    {:reply, with({:ok, ring} <- Rings.fetch(state.rings, id), do: {:ok, Log.entries(ring.log)}),
     state}
  end

  def handle_call({:expose, name, handle}, _from, state) do
    Handles.put(state.name, name, handle)
    {:reply, :ok, state}
  end

  def handle_call({:unexpose, name}, _from, state) do
    Handles.delete(state.name, name)
    {:reply, :ok, state}
  end

  # --- events from the transport ----------------------------------------------

  @impl GenServer
  def handle_info({:keyring_mesh, {:request, id, ring, peer, name, body}}, state) do
    Dispatch.request(state.dispatch, id, ring, peer, name, body)
    {:noreply, state}
  end

  def handle_info({:keyring_mesh, {:cast, ring, peer, name, body}}, state) do
    Dispatch.cast(state.dispatch, ring, peer, name, body)
    {:noreply, state}
  end

  def handle_info({:keyring_mesh, {:join_request, id, peer, invite}}, state) do
    budget = state.joins_per_hour

    case Rings.admit(state.rings, peer, invite, state.keypair, now(), budget) do
      {:ok, entries, rings, effects} ->
        # Saved and admitted by the transport before the joiner hears of it.
        state = carry_out(%{state | rings: rings}, effects)
        Quic.answer_join(state.mesh, id, {:ok, entries})
        {:noreply, state}

      {:error, reason} ->
        Logger.info("keyring: join refused: #{inspect(reason)}")
        Quic.answer_join(state.mesh, id, {:error, refusal(reason)})
        {:noreply, state}
    end
  end

  def handle_info({:keyring_mesh, {:log_update, id, _peer, entries}}, state) do
    case Rings.merge(state.rings, id, entries, state.keypair, now()) do
      {:ok, _added, rings, effects} ->
        {:noreply, carry_out(%{state | rings: rings}, effects)}

      {:error, reason} ->
        Logger.warning("keyring: membership log from a peer refused: #{inspect(reason)}")
        {:noreply, state}
    end
  end

  def handle_info({:keyring_mesh, {:peer_up, id, peer, addr}}, state) do
    # A (re)connected peer may have missed changes: offer our log.
    with {:ok, ring} <- Rings.fetch(state.rings, id),
         do: Quic.push_log(state.mesh, id, Log.entries(ring.log))

    notify(state, {:keyring_mesh, :peer_up, %{keyring: id, peer: peer, address: addr}})
    {:noreply, remember_address(state, peer, addr)}
  end

  # Anti-entropy: linked members compare log heads (in Rust, see
  # keyring_net's membership protocol); what differs arrives as a push.
  def handle_info(:anti_entropy, state) do
    Quic.exchange_heads(state.mesh)
    schedule_anti_entropy(state)
    {:noreply, state}
  end

  def handle_info({:keyring_mesh, {:peer_down, id, peer, reason}}, state) do
    notify(state, {:keyring_mesh, :peer_down, %{keyring: id, peer: peer, reason: reason}})
    {:noreply, state}
  end

  # The cluster plane saw a node: if it serves a keyring we are in, dial it
  # at the mesh address it publishes (the two planes meet here).
  def handle_info({:keyring_presence, kind, entry}, state) when kind in [:join, :update] do
    {:noreply, dial_from_presence(state, entry)}
  end

  def handle_info({:keyring_reply, ref, result}, state) do
    case Map.pop(state.joins, ref) do
      {nil, _} ->
        {:noreply, state}

      {{:hello, from, reply}, joins} ->
        GenServer.reply(from, reply)
        {:noreply, %{state | joins: joins}}

      {{:join, from, invite, mesh_addr}, joins} ->
        finish_join(%{state | joins: joins}, from, result, invite, mesh_addr)
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  # --- internals --------------------------------------------------------------

  defp apply_core(state, {:ok, reply, rings, effects}),
    do: {:reply, {:ok, reply}, carry_out(%{state | rings: rings}, effects)}

  defp apply_core(state, {:error, _} = error), do: {:reply, error, state}

  defp apply_core(state, {:error, reason, rings, effects}),
    do: {:reply, {:error, reason}, carry_out(%{state | rings: rings}, effects)}

  defp finish_join(state, from, {:ok, entries}, invite, mesh_addr) do
    case Rings.joined(state.rings, entries, invite.keyring_id, state.keypair, now()) do
      {:ok, id, rings, effects} ->
        state = carry_out(%{state | rings: rings}, effects)
        Quic.add_address(state.mesh, invite.issuer, mesh_addr)
        # Answer once our first connection to the admin is admitted, so the
        # admin knows where we listen when the caller gets :ok.
        ref = hello(state, id, invite.issuer, mesh_addr)
        {:noreply, put_in(state.joins[ref], {:hello, from, {:ok, id}})}

      {:error, _} = error ->
        GenServer.reply(from, error)
        {:noreply, state}
    end
  end

  defp finish_join(state, from, {:error, reason}, _invite, _mesh_addr) do
    GenServer.reply(from, {:error, reason})
    {:noreply, state}
  end

  defp schedule_anti_entropy(state),
    do: Process.send_after(self(), :anti_entropy, state.anti_entropy_ms)

  @hello "keyring.hello"

  # Connects once so the admin learns where we listen; answers to the ref.
  defp hello(state, ring, peer, address) do
    ref = make_ref()
    Quic.cast(state.mesh, ref, ring, peer, address, @hello, nil, 5_000)
    ref
  end

  defp refusal(:not_found), do: :unknown_keyring
  defp refusal(_), do: :bad_invite

  # Effects, in order. `only` limits them to some kinds (at start, keyrings
  # loaded from disk need no saving and no events).
  defp carry_out(state, effects, only \\ nil) do
    effects
    |> Enum.filter(&(only == nil or elem(&1, 0) in only))
    |> Enum.reduce(state, &effect/2)
    |> publish_view()
  end

  defp effect({:root_key, id, keypair, replace}, state) do
    case Persistence.save_root_key(state.data_dir, id, keypair, state.passphrase, replace) do
      :ok -> :ok
      {:error, reason} -> Logger.error("keyring: could not save a root key: #{inspect(reason)}")
    end

    state
  end

  defp effect({:save, id, root, entries}, state) do
    case Persistence.save(state.name, id, root, entries) do
      :ok -> :ok
      {:error, reason} -> Logger.error("keyring: could not save keyring: #{inspect(reason)}")
    end

    state
  end

  defp effect({:members, id, members}, state) do
    Quic.set_members(state.mesh, id, members)
    # The transport answers head exchanges from the ring (idempotent).
    with {:ok, ring} <- Rings.fetch(state.rings, id), do: Quic.set_ring(state.mesh, ring.log.ring)
    state
  end

  defp effect({:push_log, id, entries}, state) do
    Quic.push_log(state.mesh, id, entries)
    state
  end

  defp effect({:forget, id}, state) do
    Quic.remove_keyring(state.mesh, id)
    Persistence.delete(state.name, id)
    state
  end

  defp effect({:event, {:membership, info}}, state) do
    notify(state, {:keyring_mesh, :membership, info})
    state
  end

  defp effect({:event, {:fork, id, report}}, state) do
    Logger.warning("keyring: keyring #{hex(id)} forked; the fork rule chose a branch")

    notify(
      state,
      {:keyring_mesh, :fork, %{keyring: id, forks: report.forks, switched: report.switched}}
    )

    state
  end

  # The view callers and Dispatch read; members that left any keyring are
  # revoked at the gate once the new view is visible.
  defp publish_view(state) do
    old = Instance.fetch!(state.name, :rings)
    new = Rings.view(state.rings)

    if old != new do
      Instance.put(state.name, :rings, new)
      if Map.keys(old) != Map.keys(new), do: announce_to_cluster(state)

      for {id, %{members: members}} <- old do
        gone = Map.keys(members) -- Map.keys(get_in(new, [id, :members]) || %{})
        Handles.revoke(state.name, id, gone)
      end
    end

    state
  end

  # A node that restarts (possibly on another port) dials the members it has
  # an address for, instead of waiting to be called; their links then learn
  # its new address.
  defp redial_known_members(state) do
    for {peer, address} <- state.book, do: add_address(state, peer, address)

    for {id, ring} <- state.rings.rings,
        {peer, _expires} <- Rings.snapshot(ring),
        peer != state.rings.self and Map.has_key?(state.book, peer),
        do: Quic.keep_connected(state.mesh, id, peer)

    state
  end

  # Presence carries our mesh address and keyring ids (ids only), so nodes
  # of one cluster find each other's mesh endpoints.
  defp announce_to_cluster(state) do
    Keyring.Coordinator.set_mesh(
      elem(state.addresses, 0),
      Map.keys(state.rings.rings),
      state.name
    )
  catch
    # The cluster plane is restarting: its coordinator reads both at start.
    :exit, _ -> :ok
  end

  defp dial_from_presence(state, entry) do
    with %{node_id: node_id, mesh_addr: addr, keyrings: served} when is_binary(addr) <- entry,
         {:ok, peer} when peer != state.rings.self <- NodeId.parse(node_id),
         shared when shared != [] <-
           for(id <- served, Map.has_key?(state.rings.rings, id), do: id) do
      add_address(state, peer, addr)
      for id <- shared, do: Quic.keep_connected(state.mesh, id, peer)
      state
    else
      _ -> state
    end
  end

  defp add_address(state, peer, address) do
    Quic.add_address(state.mesh, peer, address)
  rescue
    # An address the transport cannot parse: forget it, keep going.
    ArgumentError -> :ok
  end

  # Saved off the mesh process: a durable write takes an fsync.
  defp remember_address(state, peer, address) do
    if Map.get(state.book, peer) == address do
      state
    else
      name = state.name

      Task.start(fn ->
        try do
          AddressBook.save(name, peer, address)
        catch
          # The instance is shutting down.
          :exit, _ -> :ok
        end
      end)

      put_in(state.book[peer], address)
    end
  end

  defp notify(state, message) do
    Keyring.PubSub.local_broadcast(Keyring.Mesh.topic(), message, instance: state.name)
  catch
    # PubSub not running (e.g. while the instance shuts down).
    _, _ -> :ok
  end

  defp hex(id), do: Base.encode16(id, case: :lower)

  defp now, do: System.os_time(:millisecond)
end
