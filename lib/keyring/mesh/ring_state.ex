defmodule Keyring.Mesh.RingState do
  @moduledoc false
  # One keyring as the mesh process holds it: the verified log entries, the
  # summary they replay to, the sealed root key (creator only) and spent
  # one-time invite tokens. Every constructor re-verifies the whole log.

  alias Keyring.Native

  defstruct [:id, :name, :entries, :summary, :root_key, spent: []]

  def new(entries, root_key) do
    with {:ok, summary} <- Native.log_verify(entries, Keyring.Mesh.now()) do
      {:ok,
       %__MODULE__{
         id: summary.id,
         name: summary.name,
         entries: entries,
         summary: summary,
         root_key: root_key
       }}
    end
  end

  def update(ring, entries) do
    with {:ok, summary} <- Native.log_verify(entries, Keyring.Mesh.now()) do
      {:ok, %{ring | entries: entries, summary: summary}}
    end
  end

  def restore(%{entries: entries, root_key: root, spent: spent}) do
    with {:ok, ring} <- new(entries, root), do: {:ok, %{ring | spent: spent}}
  end

  def to_saved(ring),
    do: %{id: ring.id, entries: ring.entries, root_key: ring.root_key, spent: ring.spent}

  def admin?(ring, key),
    do: Enum.any?(ring.summary.members, fn {k, _, _, admin?} -> k == key and admin? end)

  def transport_members(ring),
    do: Enum.map(ring.summary.members, fn {key, _roles, expires, _admin} -> {key, expires} end)

  def view(ring) do
    members =
      Map.new(ring.summary.members, fn {key, roles, expires, admin?} ->
        {key, %{roles: roles, expires_at_ms: expires, admin: admin?}}
      end)

    %{name: ring.name, members: members}
  end

  def info(ring) do
    %{
      id: ring.id,
      name: ring.name,
      length: ring.summary.length,
      head: ring.summary.head,
      members:
        Enum.map(ring.summary.members, fn {key, roles, expires, admin?} ->
          %{key: key, roles: roles, expires_at_ms: expires, admin: admin?}
        end)
    }
  end
end
