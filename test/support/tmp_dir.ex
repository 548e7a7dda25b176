defmodule Keyring.Test.TmpDir do
  @moduledoc false
  # A fresh directory under the system tmp dir, removed when the test exits.

  def new(prefix \\ "keyring-test") do
    dir = Path.join(System.tmp_dir!(), "#{prefix}-#{System.unique_integer([:positive])}")
    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    ExUnit.Callbacks.on_exit(fn -> File.rm_rf(dir) end)
    dir
  end
end
