defmodule Keyring.Mesh.Rings do
  @moduledoc false
  # The keyrings one node belongs to, as a value: the functional core of the
  # mesh plane (what Phoenix.Tracker.State is to its shard). Every operation
  # takes the state and its inputs (keys, clock, random tokens are passed in)
  # and returns
  #
  #     {:ok, reply, state, effects} | {:error, reason}
  #
  # without touching a socket, a file or a process. `Keyring.Mesh.Server`
  # carries the effects out, in order:
  #
  #   {:root_key, id, keypair}      keep the new keyring's root key (its own sealed file)
  #   {:save, ring}                 persist the keyring's log
  #   {:members, id, [{key, exp}]}  give the transport the member snapshot
  #   {:push_log, id, entries}      send the log to connected members
  #   {:forget, id}                 drop the keyring (transport, disk)
  #   {:event, message}             publish on Keyring.PubSub ("keyring:mesh")
  #
  # A ring is `%{log: Log.t(), root: boolean(), spent: [token]}`; `root` says
  # whether this node holds the keyring's root key (the node that created it).

  alias Keyring.Mesh.Log
  alias Keyring.Native

  defstruct self: nil, rings: %{}

  @type key :: <<_::256>>
  @type ring :: %{log: Log.t(), root: boolean(), spent: [binary()]}
  @type t :: %__MODULE__{self: key(), rings: %{key() => ring()}}
  @type effect ::
          {:root_key, key(), reference()}
          | {:save, ring()}
          | {:members, key(), [{key(), non_neg_integer()}]}
          | {:push_log, key(), [binary()]}
          | {:forget, key()}
          | {:event, term()}
  @type result(reply) :: {:ok, reply, t(), [effect()]} | {:error, term()}

  @doc "An empty state for the node whose public key is `self`."
  @spec new(key()) :: t()
  def new(self), do: %__MODULE__{self: self}

  @doc "Keyrings loaded from disk: each log is verified once; unverifiable ones are skipped."
  @spec restore(t(), [map()], non_neg_integer()) :: {t(), [effect()], [{key(), term()}]}
  def restore(state, saved, now) do
    Enum.reduce(saved, {state, [], []}, fn rec, {state, effects, failed} ->
      case Log.open(rec.entries, now) do
        {:ok, log} ->
          ring = %{log: log, root: rec.root, spent: rec.spent}
          {put(state, ring), effects ++ announce(ring), failed}

        {:error, reason} ->
          {state, effects, [{rec.id, reason} | failed]}
      end
    end)
  end

  @doc "A new keyring named `name`, rooted at the key pair `root`, this node its first admin."
  @spec create(t(), String.t(), reference(), non_neg_integer()) :: result(key())
  def create(state, name, root, now) do
    with {:ok, log} <- Log.create(root, name, [state.self], now) do
      ring = %{log: log, root: true, spent: []}
      {:ok, Log.id(log), put(state, ring), [{:root_key, Log.id(log), root} | changed(ring)]}
    end
  end

  @doc "Signs `op` with `signer` (this node's key) and appends it to keyring `id`."
  @spec change(t(), key(), reference(), Log.op(), non_neg_integer()) :: result(map())
  def change(state, id, signer, op, now) do
    with {:ok, ring} <- fetch(state, id),
         {:ok, log, _entry} <- Log.append(ring.log, signer, op, now) do
      ring = %{ring | log: log}
      {:ok, Log.info(log), put(state, ring), changed(ring) ++ [push(ring)]}
    end
  end

  @doc "Whether this node may issue invites for `id` (it must be an admin)."
  @spec check_invite(t(), key()) :: :ok | {:error, term()}
  def check_invite(state, id) do
    with {:ok, ring} <- fetch(state, id) do
      if Log.admin?(ring.log, state.self), do: :ok, else: {:error, :not_an_admin}
    end
  end

  @doc """
  A joiner `peer` presents `invite` (bytes): checks it against keyring state
  and, if it holds, appends the new member signed by `signer`. Answers the log
  to send back.
  """
  @spec admit(t(), key(), binary(), reference(), non_neg_integer()) :: result([binary()])
  def admit(state, peer, invite_bytes, signer, now) do
    with {:ok, invite} <- Native.invite_verify(invite_bytes, now),
         {:ok, ring} <- fetch(state, invite.keyring_id),
         :ok <- check(Log.admin?(ring.log, invite.issuer), :issuer_not_admin),
         :ok <- check(Log.admin?(ring.log, state.self), :not_an_admin),
         :ok <- check(not (invite.one_time and invite.token in ring.spent), :invite_spent),
         :ok <- check(not Log.member?(ring.log, peer), :already_member),
         {:ok, log, _} <-
           Log.append(ring.log, signer, {:add_member, peer, 0, invite.roles}, now) do
      spent = if invite.one_time, do: [invite.token | ring.spent], else: ring.spent
      ring = %{ring | log: log, spent: spent}
      {:ok, Log.entries(log), put(state, ring), changed(ring) ++ [push(ring)]}
    end
  end

  @doc "A member pushed its log for keyring `id`: take what extends ours."
  @spec merge(t(), key(), [binary()], non_neg_integer()) :: result(non_neg_integer())
  def merge(state, id, incoming, now) do
    with {:ok, ring} <- fetch(state, id),
         {:ok, log, added} <- Log.ingest(ring.log, incoming, now) do
      if added == 0 do
        {:ok, 0, state, []}
      else
        ring = %{ring | log: log}
        {:ok, added, put(state, ring), changed(ring)}
      end
    end
  end

  @doc "A whole log from elsewhere (an import, or the admin's answer to our join)."
  @spec import(t(), [binary()], non_neg_integer()) :: result(map())
  def import(state, entries, now) do
    with {:ok, log} <- Log.open(entries, now) do
      case fetch(state, Log.id(log)) do
        {:ok, _ring} ->
          with {:ok, _added, state, effects} <- merge(state, Log.id(log), entries, now),
               do: {:ok, Log.info(state.rings[Log.id(log)].log), state, effects}

        {:error, :not_found} ->
          ring = %{log: log, root: false, spent: []}
          {:ok, Log.info(log), put(state, ring), changed(ring)}
      end
    end
  end

  @doc "The admin's answer to our join with an invite for `keyring_id`."
  @spec joined(t(), [binary()], key(), non_neg_integer()) :: result(key())
  def joined(state, entries, keyring_id, now) do
    with {:ok, log} <- Log.open(entries, now),
         :ok <- check(Log.id(log) == keyring_id, :wrong_keyring),
         :ok <- check(Log.member?(log, state.self), :not_admitted),
         {:ok, _info, state, effects} <- import(state, entries, now) do
      {:ok, keyring_id, state, effects}
    end
  end

  @doc "Leaves keyring `id` locally."
  @spec leave(t(), key()) :: result(:ok)
  def leave(state, id) do
    with {:ok, _ring} <- fetch(state, id) do
      {:ok, :ok, %{state | rings: Map.delete(state.rings, id)}, [{:forget, id}]}
    end
  end

  @spec fetch(t(), key()) :: {:ok, ring()} | {:error, :not_found}
  def fetch(state, id) do
    case Map.fetch(state.rings, id) do
      {:ok, ring} -> {:ok, ring}
      :error -> {:error, :not_found}
    end
  end

  @doc "Members with their expiry, as the transport checks them (`{key, expires_at_ms}`)."
  @spec snapshot(ring()) :: [{key(), non_neg_integer()}]
  def snapshot(ring), do: Enum.map(Log.members(ring.log), fn {k, _, exp, _} -> {k, exp} end)

  @doc """
  What callers read without a process hop: for each keyring its name and
  members (roles, expiry, admin flag).
  """
  @spec view(t()) :: %{key() => %{name: String.t(), members: map()}}
  def view(state) do
    Map.new(state.rings, fn {id, ring} ->
      members =
        Map.new(Log.members(ring.log), fn {key, roles, expires, admin?} ->
          {key, %{roles: roles, expires_at_ms: expires, admin: admin?}}
        end)

      {id, %{name: Log.name(ring.log), members: members}}
    end)
  end

  defp put(state, ring), do: put_in(state.rings[Log.id(ring.log)], ring)

  defp check(true, _reason), do: :ok
  defp check(false, reason), do: {:error, reason}

  defp announce(ring), do: [{:members, Log.id(ring.log), snapshot(ring)}]

  defp changed(ring),
    do: [{:save, ring}] ++ announce(ring) ++ [{:event, {:membership, Log.info(ring.log)}}]

  defp push(ring), do: {:push_log, Log.id(ring.log), Log.entries(ring.log)}
end
