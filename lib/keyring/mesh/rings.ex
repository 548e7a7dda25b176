defmodule Keyring.Mesh.Rings do
  @moduledoc false
  # The keyrings one node belongs to, as a value: the functional core of the
  # mesh plane (what Phoenix.Tracker.State is to its shard). Every operation
  # takes the state and its inputs (keys, clock, random tokens are passed in)
  # and returns
  #
  #     {:ok, reply, state, effects} | {:error, reason}
  #
  # (and, where part of an input was taken and part refused,
  # `{:error, reason, state, effects}`: the caller hears the refusal, the
  # accepted part is carried out).
  #
  # without touching a socket, a file or a process. `Keyring.Mesh.Server`
  # carries the effects out, in order:
  #
  #   {:root_key, id, keypair, replace?}  keep the keyring's root key (its own sealed file)
  #   {:save, id, root?, entries}   persist new entries (and whether we hold the root key)
  #   {:members, id, [{key, exp}]}  give the transport the member snapshot
  #   {:push_log, id, entries}      send entries to connected members
  #   {:forget, id}                 drop the keyring (transport, disk)
  #   {:event, message}             publish on Keyring.PubSub ("keyring:mesh")
  #
  # A ring is `%{log: Log.t(), root: boolean()}`; `root` says whether this
  # node holds the keyring's root key (the node that created it, or the one
  # it was rotated to).

  alias Keyring.Mesh.Log
  alias Keyring.Native

  defstruct self: nil, rings: %{}

  @type key :: <<_::256>>
  @type ring :: %{log: Log.t(), root: boolean()}
  @type t :: %__MODULE__{self: key(), rings: %{key() => ring()}}
  @type effect ::
          {:root_key, key(), reference(), boolean()}
          | {:save, key(), boolean(), [binary()]}
          | {:members, key(), [{key(), non_neg_integer()}]}
          | {:push_log, key(), [binary()]}
          | {:forget, key()}
          | {:event, term()}
  @type result(reply) ::
          {:ok, reply, t(), [effect()]} | {:error, term()} | {:error, term(), t(), [effect()]}

  @doc "An empty state for the node whose public key is `self`."
  @spec new(key()) :: t()
  def new(self), do: %__MODULE__{self: self}

  @doc "Keyrings loaded from disk: each log is verified once; unverifiable ones are skipped."
  @spec restore(t(), [map()], non_neg_integer()) :: {t(), [effect()], [{key(), term()}]}
  def restore(state, saved, now) do
    Enum.reduce(saved, {state, [], []}, fn rec, {state, effects, failed} ->
      case Log.open(rec.entries, now) do
        {:ok, log} ->
          ring = %{log: log, root: rec.root}
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
      ring = %{log: log, root: true}

      {:ok, Log.id(log), put(state, ring),
       [{:root_key, Log.id(log), root, false} | changed(ring, Log.entries(log))]}
    end
  end

  @doc "Signs `op` with `signer` (this node's key) and appends it to keyring `id`."
  @spec change(t(), key(), reference(), Log.op(), non_neg_integer()) :: result(map())
  def change(state, id, signer, op, now) do
    with {:ok, ring} <- fetch(state, id),
         {:ok, log, entry} <- Log.append(ring.log, signer, op, now) do
      ring = %{ring | log: log}
      {:ok, Log.info(log), put(state, ring), changed(ring, [entry]) ++ [push(ring, [entry])]}
    end
  end

  @doc """
  Hands the root role of keyring `id` to `new_root` (a key pair): signed by
  the current root key `root`, which this node must hold.
  """
  @spec rotate_root(t(), key(), reference(), reference(), non_neg_integer()) :: result(map())
  def rotate_root(state, id, root, new_root, now) do
    new_key = Keyring.Native.keypair_public_key(new_root)

    with {:ok, ring} <- fetch(state, id),
         :ok <- check(ring.root, :not_the_root),
         {:ok, log, entry} <- Log.append(ring.log, root, {:rotate_root, new_key}, now) do
      ring = %{ring | log: log}

      {:ok, Log.info(log), put(state, ring),
       [{:root_key, id, new_root, true} | changed(ring, [entry])] ++ [push(ring, [entry])]}
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
  A joiner `peer` presents `invite` (bytes): the invite's signature and
  expiry, then the log's rules (issuer an admin, not spent, not revoked, use
  cap, bound key, a key the log has never seen, the issuer's join budget),
  then this node (an admin) appends the join signed by `signer`. Answers the
  log to send back.
  """
  @spec admit(t(), key(), binary(), reference(), non_neg_integer(), pos_integer()) ::
          result([binary()])
  def admit(state, peer, invite_bytes, signer, now, joins_per_hour) do
    with {:ok, invite} <- Native.invite_verify(invite_bytes, now),
         {:ok, ring} <- fetch(state, invite.keyring_id),
         :ok <- check(Log.admin?(ring.log, state.self), :not_an_admin),
         {:ok, op} <- Log.admit(ring.log, invite_bytes, peer, now, joins_per_hour),
         {:ok, log, entry} <- Log.append(ring.log, signer, op, now) do
      ring = %{ring | log: log}
      {:ok, Log.entries(log), put(state, ring), changed(ring, [entry]) ++ [push(ring, [entry])]}
    end
  end

  @doc """
  Entries a member sent for keyring `id`: takes what is new (each verified
  once). A fork is reported as an event; when the effective chain moved to
  another branch, operations this node signed on the losing one are signed
  again on the new head (with `signer`).
  """
  @spec merge(t(), key(), [binary()], reference(), non_neg_integer()) :: result(map())
  def merge(state, id, incoming, signer, now) do
    with {:ok, ring} <- fetch(state, id) do
      %{locator: before} = Log.heads(ring.log)

      with {:ok, log, report} <- Log.ingest(ring.log, incoming, now) do
        {log, reappended} = reappend(log, report, state.self, signer, now)
        ring = %{ring | log: log}
        new = Log.entries_since(log, before)
        forks = if report.forks == [], do: [], else: [{:event, {:fork, id, report}}]

        if new == [] and forks == [] do
          {:ok, report, state, []}
        else
          {:ok, report, put(state, ring),
           changed(ring, new) ++ forks ++ push_if(ring, reappended)}
        end
      end
    end
  end

  # Our own operations that a fork resolution left on the losing branch.
  defp reappend(log, %{switched: %{abandoned: abandoned}}, self, signer, now) do
    Enum.reduce(abandoned, {log, []}, fn
      {^self, op}, {log, entries} ->
        case Log.append(log, signer, op, now) do
          {:ok, log, entry} -> {log, entries ++ [entry]}
          {:error, _} -> {log, entries}
        end

      _other, acc ->
        acc
    end)
  end

  defp reappend(log, _report, _self, _signer, _now), do: {log, []}

  defp push_if(_ring, []), do: []
  defp push_if(ring, entries), do: [push(ring, entries)]

  @doc "A whole log from elsewhere (an import, or the admin's answer to our join)."
  @spec import(t(), [binary()], reference(), non_neg_integer()) :: result(map())
  def import(state, entries, signer, now) do
    with {:ok, log} <- Log.open_remote(entries, now) do
      id = Log.id(log)

      case fetch(state, id) do
        {:ok, ring} ->
          # What verifies is kept; the caller hears of the first refusal.
          with {:ok, report, state, effects} <- merge(state, id, entries, signer, now) do
            %{log: log} = Map.get(state.rings, id, ring)

            case Log.refused(report) do
              :ok -> {:ok, Log.info(log), state, effects}
              # The verified entries stay (they are valid); the state moves on.
              {:error, reason} -> {:error, reason, state, effects}
            end
          end

        {:error, :not_found} ->
          ring = %{log: log, root: false}
          {:ok, Log.info(log), put(state, ring), changed(ring, Log.entries(log))}
      end
    end
  end

  @doc "The admin's answer to our join with an invite for `keyring_id`."
  @spec joined(t(), [binary()], key(), reference(), non_neg_integer()) :: result(key())
  def joined(state, entries, keyring_id, signer, now) do
    with {:ok, log} <- Log.open_remote(entries, now),
         :ok <- check(Log.id(log) == keyring_id, :wrong_keyring),
         :ok <- check(Log.member?(log, state.self), :not_admitted),
         {:ok, _info, state, effects} <- import(state, entries, signer, now) do
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

  defp changed(ring, new_entries) do
    id = Log.id(ring.log)

    [{:save, id, ring.root, new_entries}] ++
      announce(ring) ++ [{:event, {:membership, Log.info(ring.log)}}]
  end

  defp push(ring, entries), do: {:push_log, Log.id(ring.log), entries}
end
