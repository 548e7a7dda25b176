defmodule Keyring.Ring do
  @moduledoc """
  Keyrings: trust groups of nodes.

  A keyring is identified by a root Ed25519 key (its id is the root public key,
  shown in the same text form as node ids). Its membership is an append-only,
  hash-chained log of signed entries; each entry adds or removes a member or
  an admin and is signed by a key that is an admin at that point of the log.
  Every node replays and verifies the whole log itself, so a forged entry, an
  entry signed by a non-admin, or a fork is refused with a clear reason.
  Members carry roles and an optional expiry. Revocation is by key.

  The node that creates a keyring keeps the root key and is its first admin.
  Only members of a keyring can open a connection for it (see
  `Keyring.Mesh`); the check happens inside the TLS handshake.

      iex> dir = Path.join(System.tmp_dir!(), "keyring-ring-doc-#{System.unique_integer([:positive])}")
      iex> {:ok, _} = Keyring.start_link(name: RingDoc, data_dir: dir)
      iex> {:ok, ring} = Keyring.Ring.create("ops", instance: RingDoc)
      iex> {:ok, invite} = Keyring.Ring.invite(ring, instance: RingDoc, roles: ["web"])
      iex> String.starts_with?(invite, "kr1")
      true
      iex> {:ok, info} = Keyring.Ring.info(ring, instance: RingDoc)
      iex> {info.name, length(info.members)}
      {"ops", 1}

  On another node, `Keyring.Ring.join(invite)` (or `Keyring.join/2`) sends the
  invite to the admin node named in it; the admin appends the new member to
  the log and answers with the log, which the joiner verifies.

  Every function takes `instance: name` (the local Keyring instance, default
  `Keyring`). Keyring ids and member keys may be given as 32-byte public keys
  or in text form.
  """

  alias Keyring.Instance
  alias Keyring.Identity.NodeId
  alias Keyring.Mesh.{Invite, Quic, Server}

  @type id :: <<_::256>>
  @type member :: %{
          key: <<_::256>>,
          roles: [String.t()],
          expires_at_ms: non_neg_integer(),
          admin: boolean()
        }
  @type info :: %{
          id: id(),
          name: String.t(),
          length: pos_integer(),
          head: <<_::256>>,
          members: [member()]
        }

  @doc "Creates a keyring named `name` with this node as its root holder and first admin."
  @spec create(String.t(), keyword()) :: {:ok, id()} | {:error, term()}
  def create(name, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    unless is_binary(name) and byte_size(name) in 1..64,
      do: raise(ArgumentError, "a keyring name is 1..64 bytes, got: #{inspect(name)}")

    GenServer.call(Server.server(opts[:instance]), {:create, name})
  end

  @doc """
  Adds (or renews) a member: an admin's decision, unlike an invite, which
  only ever admits a key the log has never seen. Options: `:roles` (list of
  strings of `[a-z0-9_.:-]`, default `[]`), `:expires_at` (`DateTime` or Unix
  ms; default never) or `:ttl` (ms from now).
  """
  @spec add_member(id() | String.t(), <<_::256>> | String.t(), keyword()) ::
          {:ok, info()} | {:error, term()}
  def add_member(ring, key, opts \\ []) do
    opts = Keyword.validate!(opts, [:expires_at, :ttl, instance: Keyring, roles: []])
    roles = Enum.map(opts[:roles], &to_string/1)
    change(ring, {:add_member, key!(key), expires_at(opts), roles}, opts)
  end

  @doc "Revokes a member (by key). Its live connections are closed at once."
  @spec remove_member(id() | String.t(), <<_::256>> | String.t(), keyword()) ::
          {:ok, info()} | {:error, term()}
  def remove_member(ring, key, opts \\ []),
    do: change(ring, {:remove_member, key!(key)}, Keyword.validate!(opts, instance: Keyring))

  @doc """
  Grants admin rights (admins may sign log entries and invites). With
  `:expires_at` or `:ttl` the right ends then: the admin can no longer sign
  (an admin whose right expired could still sign entries dated before the
  expiry, so remove an admin you no longer trust with `remove_admin/3`).
  """
  @spec add_admin(id() | String.t(), <<_::256>> | String.t(), keyword()) ::
          {:ok, info()} | {:error, term()}
  def add_admin(ring, key, opts \\ []) do
    opts = Keyword.validate!(opts, [:expires_at, :ttl, instance: Keyring])
    change(ring, {:add_admin, key!(key), expires_at(opts)}, opts)
  end

  @doc """
  Hands the keyring's root role to a new key, generated here and kept in
  place of the old one (same file, sealed the same way). This node must hold
  the current root key. The keyring's id stays the same; the old root key is
  no longer an admin, and a copy of it that leaked can be revoked with
  `remove_member/3`.
  """
  @spec rotate_root(id() | String.t(), keyword()) :: {:ok, info()} | {:error, term()}
  def rotate_root(ring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:rotate_root, id!(ring)})
  end

  @doc """
  Revokes an invite (its text, as `invite/2` made it) before it is used up:
  every admin refuses it from then on. This node must be an admin.
  """
  @spec revoke_invite(id() | String.t(), String.t(), keyword()) ::
          {:ok, info()} | {:error, term()}
  def revoke_invite(ring, invite, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    with {:ok, bytes} <- Invite.decode(invite),
         {:ok, parsed} <- Keyring.Native.invite_verify(bytes, 0) do
      change(ring, {:revoke_invite, parsed.issuer, parsed.token}, opts)
    end
  end

  @doc "Withdraws admin rights."
  @spec remove_admin(id() | String.t(), <<_::256>> | String.t(), keyword()) ::
          {:ok, info()} | {:error, term()}
  def remove_admin(ring, key, opts \\ []),
    do: change(ring, {:remove_admin, key!(key)}, Keyword.validate!(opts, instance: Keyring))

  defp change(ring, op, opts),
    do: GenServer.call(Server.server(opts[:instance]), {:change, id!(ring), op})

  @doc """
  Makes an invite (text starting with `kr1`). This node must be an admin of
  the keyring; joiners contact it. Every join an invite admits is recorded in
  the log, so every admin counts its uses.

  Options: `:ttl` (ms, default one day), `:max_uses` (default 1; 0 = no cap
  but the issuer's join budget), `:bind` (a node id or key: only that key may
  use it), `:roles` for the new member. An invite only admits a key the log
  has never seen: it never renews or changes a member.
  """
  @spec invite(id() | String.t(), keyword()) :: {:ok, String.t()} | {:error, term()}
  def invite(ring, opts \\ []) do
    opts =
      Keyword.validate!(opts, [
        :bind,
        :one_time,
        :max_uses,
        instance: Keyring,
        ttl: 86_400_000,
        roles: []
      ])

    max_uses =
      cond do
        Keyword.has_key?(opts, :max_uses) -> opts[:max_uses]
        opts[:one_time] == false -> 0
        true -> 1
      end

    opts =
      opts
      |> Keyword.update!(:roles, fn roles -> Enum.map(roles, &to_string/1) end)
      |> Keyword.put(:max_uses, max_uses)
      |> Keyword.update(:bind, nil, &(&1 && key!(&1)))

    with {:ok, bytes} <-
           GenServer.call(Server.server(opts[:instance]), {:invite, id!(ring), opts}),
         do: {:ok, Invite.encode(bytes)}
  end

  @doc """
  Joins the keyring an invite is for: contacts the admin named in it, which
  adds this node to the log. Returns the keyring id. Options: `:timeout` (ms,
  default 10 s).

  The invite carries the admin's addresses as hints (`"host:port"`, a host
  name is resolved here); an invite whose hints are not addresses answers
  `{:error, :bad_address_hint}`.
  """
  @spec join(String.t(), keyword()) :: {:ok, id()} | {:error, term()}
  def join(invite, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, timeout: 10_000)

    with {:ok, bytes} <- Invite.decode(invite),
         {:ok, parsed} <- Keyring.Native.invite_verify(bytes, now()),
         {:ok, addresses} <- Invite.addresses(parsed.address_hint) do
      GenServer.call(
        Server.server(opts[:instance]),
        {:join, bytes, parsed, addresses, opts[:timeout]},
        opts[:timeout] + 5_000
      )
    end
  end

  @doc "Leaves a keyring locally: forgets its log and closes its connections."
  @spec leave(id() | String.t(), keyword()) :: :ok | {:error, term()}
  def leave(ring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:leave, id!(ring)})
  end

  @doc "The keyring's name, log length and head, and its current members."
  @spec info(id() | String.t(), keyword()) :: {:ok, info()} | {:error, :not_found}
  def info(ring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:info, id!(ring)})
  end

  @doc "The ids of the keyrings this node belongs to."
  @spec list(keyword()) :: [id()]
  def list(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    opts[:instance] |> Instance.fetch!(:rings) |> Map.keys()
  end

  @doc """
  The members of `ring` this node has a live link to, by public key.

  Links come up when either side calls the other and are kept up: a lost one
  is redialled in the background (see `Keyring.Mesh`); `:peer_up` and
  `:peer_down` events (`Keyring.Mesh.subscribe/1`) report the changes.
  """
  @spec connected(id() | String.t(), keyword()) :: [<<_::256>>]
  def connected(ring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    opts[:instance] |> Instance.fetch!(:mesh) |> Quic.connected(id!(ring))
  end

  @doc "The membership log as a list of encoded entries (to inspect or hand to another node)."
  @spec log(id() | String.t(), keyword()) :: {:ok, [binary()]} | {:error, :not_found}
  def log(ring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:log, id!(ring)})
  end

  @doc """
  Imports a membership log received out of band. It must verify from its
  genesis and, for a known keyring, extend the local log (a fork is refused).
  """
  @spec import_log([binary()], keyword()) :: {:ok, info()} | {:error, term()}
  def import_log(entries, opts \\ []) when is_list(entries) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:import, entries})
  end

  @doc """
  This node's mesh addresses: `{member_endpoint, join_endpoint}` as `"host:port"`.
  """
  @spec addresses(keyword()) :: {String.t(), String.t()}
  def addresses(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Instance.fetch!(opts[:instance], :mesh_addresses)
  end

  @doc "The text form of a keyring id."
  @spec encode_id(id()) :: String.t()
  def encode_id(id), do: NodeId.encode(id)

  defp expires_at(opts) do
    cond do
      opts[:ttl] -> now() + opts[:ttl]
      match?(%DateTime{}, opts[:expires_at]) -> DateTime.to_unix(opts[:expires_at], :millisecond)
      is_integer(opts[:expires_at]) -> opts[:expires_at]
      true -> 0
    end
  end

  defp now, do: System.os_time(:millisecond)

  @doc false
  def id!(<<_::256>> = id), do: id
  def id!(text) when is_binary(text), do: NodeId.parse!(text)

  def id!(other),
    do: raise(ArgumentError, "expected a keyring id (32 bytes or text), got: #{inspect(other)}")

  defp key!(key), do: id!(key)
end
