defmodule Keyring.DAG.Directory do
  @moduledoc """
  A directory node: named entries, each a file (a blob), an executable
  file (a blob) or a subdirectory (a directory node).

  Names are UTF-8, 1 to 255 bytes, never `.` or `..`, without `/` or NUL,
  and unique; entries are stored sorted by name (bytewise), so a directory
  has one encoding whatever order its entries are given in. `size` is the
  file's length, or for a subdirectory the total bytes of the files below it.
  """

  defstruct entries: []

  @type entry :: %{
          name: String.t(),
          kind: :file | :executable | :directory,
          size: non_neg_integer(),
          cid: Keyring.Store.Cid.t()
        }
  @type t :: %__MODULE__{entries: [entry()]}
end
